namespace LongContext.Training;

/// <summary>
/// Hyper-parameters of <see cref="GroupedAdamW"/>, validated as they are set. Defaults are PyTorch's / HF
/// Trainer's (<c>lr</c> aside): betas (0.9, 0.999), eps 1e-8, weight decay 0 (LongLoRA trains with 0).
/// </summary>
public sealed record AdamWOptions
{
    private readonly double _learningRate = 2e-5;
    private readonly double _beta1 = 0.9;
    private readonly double _beta2 = 0.999;
    private readonly double _epsilon = 1e-8;
    private readonly double _weightDecay;
    private readonly WeightDecayRules _decayRules = new();

    /// <summary>Base (peak) learning rate, positive and finite; schedules multiply it. Default 2e-5 (LongLoRA's).</summary>
    public double LearningRate { get => _learningRate; init => _learningRate = Guard.Positive(value, nameof(LearningRate)); }

    /// <summary>First-moment decay, in [0, 1). Default 0.9.</summary>
    public double Beta1 { get => _beta1; init => _beta1 = UnitInterval(value, nameof(Beta1)); }

    /// <summary>Second-moment decay, in [0, 1). Default 0.999.</summary>
    public double Beta2 { get => _beta2; init => _beta2 = UnitInterval(value, nameof(Beta2)); }

    /// <summary>Denominator term, positive and finite. Default 1e-8.</summary>
    public double Epsilon { get => _epsilon; init => _epsilon = Guard.Positive(value, nameof(Epsilon)); }

    /// <summary>Decoupled weight decay of the decay group, non-negative and finite. Default 0.</summary>
    public double WeightDecay
    {
        get => _weightDecay;
        init => _weightDecay = value >= 0 && double.IsFinite(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(WeightDecay), value, $"{nameof(WeightDecay)} must be a non-negative finite number; got {value}.");
    }

    /// <summary>
    /// Which parameters decay (<see cref="ParameterGroups"/>). Default: not biases, norms or embeddings. Rules other than
    /// the default with <see cref="WeightDecay"/> 0 are refused by <see cref="GroupedAdamW"/> (no parameter would decay).
    /// </summary>
    public WeightDecayRules DecayRules { get => _decayRules; init => _decayRules = Guard.NotNull(value, nameof(DecayRules)); }

    /// <summary>Refuses <see cref="DecayRules"/> other than the default when <see cref="WeightDecay"/> is 0, where they change nothing.</summary>
    /// <param name="paramName">The parameter the options came in as, for the exception.</param>
    internal void CheckSettingsUsed(string paramName)
    {
        if (_weightDecay == 0 && !_decayRules.IsDefault)
            throw new ArgumentException(
                $"{nameof(DecayRules)} ({_decayRules.Describe()}) choose which parameters decay, and {nameof(WeightDecay)} is 0 (none does); " +
                $"set {nameof(WeightDecay)} or leave {nameof(DecayRules)} at its default.", paramName);
    }

    private static double UnitInterval(double value, string name)
        => value >= 0 && value < 1 ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1); got {value}.");
}
