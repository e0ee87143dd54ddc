namespace LongContext.Llama.Evaluation;

/// <summary>Settings of sliding-window perplexity, validated as they are set.</summary>
public sealed record PerplexityOptions
{
    private readonly IReadOnlyList<int> _lengths = [4096];
    private readonly IReadOnlyList<PerplexityProtocol> _protocols = [PerplexityProtocol.LongLora, PerplexityProtocol.Strided];
    private readonly int _step = PerplexityWindows.LongLoraStep;
    private readonly int _stride = 256;
    private readonly int? _maxWindows;

    /// <summary>Context lengths L to evaluate at (window sizes), each at least 2. Default [4096].</summary>
    public IReadOnlyList<int> Lengths
    {
        get => _lengths;
        init => _lengths = LengthsSetting.Checked(value, 2, "lengths of at least 2 tokens", nameof(Lengths));
    }

    /// <summary>Protocols to run, each once per length. Default both.</summary>
    public IReadOnlyList<PerplexityProtocol> Protocols
    {
        get => _protocols;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(Protocols));
            if (value.Count == 0) throw new ArgumentException($"{nameof(Protocols)} must hold at least one protocol.", nameof(Protocols));
            foreach (var p in value)
                if (!Enum.IsDefined(p)) throw new ArgumentOutOfRangeException(nameof(Protocols), p, $"{nameof(Protocols)} must hold LongLora or Strided; got {(int)p}.");
            _protocols = value.Distinct().ToArray();
        }
    }

    /// <summary>Distance between LongLoRA window starts (the script's <c>sliding_window</c>), at least 1. Default 256.</summary>
    public int Step
    {
        get => _step;
        init => _step = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Step), value, $"{nameof(Step)} must be at least 1; got {value}.");
    }

    /// <summary>Stride S of the strided protocol, in [1, L] for every length. Default 256 (PI, YaRN).</summary>
    public int Stride
    {
        get => _stride;
        init => _stride = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Stride), value, $"{nameof(Stride)} must be at least 1; got {value}.");
    }

    /// <summary>
    /// Evaluate only the first this many windows of each protocol and length (null: all, as the papers do). A
    /// sample; the result records how many ran.
    /// </summary>
    public int? MaxWindows
    {
        get => _maxWindows;
        init => _maxWindows = value is null || value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxWindows), value, $"{nameof(MaxWindows)} must be null or at least 1; got {value}.");
    }
}
