namespace LongContext.Demo.Experiment;

/// <summary>
/// Sizes of one run of the experiment (the demo command's options). Each value is checked when it is set
/// (<see cref="SettingOutOfRangeException"/> naming the property).
/// </summary>
public sealed record ExperimentSettings
{
    private readonly int _seed = 1, _factor = 4, _steps = 150, _batch = 4, _loraRank = 8, _evalTokens = 32768, _evalStep = 256, _passkeyTrials = 20;
    private readonly double _learningRate = 1e-3, _passkeyFraction = 0.25;
    private readonly IReadOnlyList<Method> _methods = Experiment.Methods.Default;

    /// <summary>The reduced sizes of <c>demo --quick</c> (CI): 20 updates x 2 rows, 4096 evaluation tokens, 5 passkey trials.</summary>
    public static ExperimentSettings QuickRun { get; } = new() { Steps = 20, Batch = 2, EvalTokens = 4096, PasskeyTrials = 5 };

    /// <summary>Seed of the LoRA initialization and of the data order (non-negative).</summary>
    public int Seed { get => _seed; init => _seed = SettingChecks.AtLeast(value, 0); }
    /// <summary>Extension factor: the target is Factor x L (at least 2).</summary>
    public int Factor { get => _factor; init => _factor = SettingChecks.AtLeast(value, 2); }
    /// <summary>Updates of every fine-tuning method (at least 1).</summary>
    public int Steps { get => _steps; init => _steps = SettingChecks.AtLeast(value, 1); }
    /// <summary>Rows of the target length per update (the control takes Factor x as many rows of L: the same tokens); at least 1.</summary>
    public int Batch { get => _batch; init => _batch = SettingChecks.AtLeast(value, 1); }
    /// <summary>Peak learning rate (LongLoRA's schedule: constant after 20 warmup updates); positive.</summary>
    public double LearningRate { get => _learningRate; init => _learningRate = SettingChecks.Positive(value); }
    /// <summary>LoRA rank (alpha 2 x rank); at least 1.</summary>
    public int LoraRank { get => _loraRank; init => _loraRank = SettingChecks.AtLeast(value, 1); }
    /// <summary>Share of passkey rows in the fine-tuning data, in [0, 1).</summary>
    public double PasskeyFraction { get => _passkeyFraction; init => _passkeyFraction = SettingChecks.Fraction(value); }
    /// <summary>Held-out tokens of the perplexity stream (at least 4096).</summary>
    public int EvalTokens { get => _evalTokens; init => _evalTokens = SettingChecks.AtLeast(value, 4096); }
    /// <summary>Distance between window starts (LongLoRA: 256); at least 1.</summary>
    public int EvalStep { get => _evalStep; init => _evalStep = SettingChecks.AtLeast(value, 1); }
    /// <summary>Passkey trials per length (at least 1).</summary>
    public int PasskeyTrials { get => _passkeyTrials; init => _passkeyTrials = SettingChecks.AtLeast(value, 1); }
    /// <summary>These settings after the check that needs the base's context L (each value alone is checked when it is set).</summary>
    /// <param name="context">L, the base's pretraining context.</param>
    /// <exception cref="SettingOutOfRangeException">The training tokens (<see cref="Steps"/> x <see cref="Batch"/> rows of Factor x L) do not fit one array,
    /// or <see cref="EvalTokens"/> gives no perplexity window at Factor x L (LongLoRA's windows need more than the length + <see cref="EvalStep"/>).</exception>
    public ExperimentSettings Validated(int context)
    {
        long target = (long)Factor * context;
        SettingChecks.FitOneArray(Steps, Batch * target, $"with Batch {Batch} at {Factor} x L = {target} tokens", nameof(Steps));
        if (EvalTokens <= target + EvalStep)
            throw SettingChecks.Bad(EvalTokens, $"at least {target + EvalStep + 1} for windows of {Factor} x L = {target} tokens every {EvalStep} (the last is dropped)", nameof(EvalTokens));
        return this;
    }

    /// <summary>Methods to run, at least one, no repeats (default <see cref="Experiment.Methods.Default"/>).</summary>
    public IReadOnlyList<Method> Methods
    {
        get => _methods;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Count == 0 || value.Distinct().Count() != value.Count)
                throw SettingChecks.Bad(string.Join(",", value.Select(Experiment.Methods.Key)), "one or more methods, each once");
            _methods = value.ToArray();
        }
    }
}
