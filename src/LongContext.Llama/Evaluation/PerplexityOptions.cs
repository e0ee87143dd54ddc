namespace LongContext.Llama.Evaluation;

/// <summary>
/// Settings of sliding-window perplexity, validated as they are set. <see cref="Step"/> belongs to the LongLoRA
/// protocol and <see cref="Stride"/> to the strided one: a value other than the default for a protocol that
/// <see cref="Protocols"/> does not run is refused when the options are used (<see cref="SlidingWindowPerplexity.Evaluate"/>),
/// as it would change nothing.
/// </summary>
public sealed record PerplexityOptions
{
    /// <summary>Default <see cref="Stride"/>: 256, as PI and YaRN evaluate.</summary>
    public const int DefaultStride = 256;

    private readonly IReadOnlyList<int> _lengths = [4096];
    private readonly IReadOnlyList<PerplexityProtocol> _protocols = [PerplexityProtocol.LongLora, PerplexityProtocol.Strided];
    private readonly int _step = PerplexityWindows.LongLoraStep;
    private readonly int _stride = DefaultStride;
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

    /// <summary>
    /// Distance between LongLoRA window starts (the script's <c>sliding_window</c>), at least 1. Default 256
    /// (<see cref="PerplexityWindows.LongLoraStep"/>). Read only by <see cref="PerplexityProtocol.LongLora"/>.
    /// </summary>
    public int Step
    {
        get => _step;
        init => _step = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Step), value, $"{nameof(Step)} must be at least 1; got {value}.");
    }

    /// <summary>
    /// Stride S of the strided protocol, in [1, L] for every length. Default <see cref="DefaultStride"/> (PI, YaRN).
    /// Read only by <see cref="PerplexityProtocol.Strided"/>.
    /// </summary>
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

    /// <summary>
    /// Refuses a <see cref="Step"/> or <see cref="Stride"/> set away from its default for a protocol that
    /// <see cref="Protocols"/> leaves out (the value would change nothing; the two are easy to mistake for each other).
    /// </summary>
    /// <param name="paramName">The parameter the options came in as, for the exception.</param>
    internal void CheckSettingsUsed(string paramName)
    {
        if (_step != PerplexityWindows.LongLoraStep && !_protocols.Contains(PerplexityProtocol.LongLora))
            throw new ArgumentException(
                $"{nameof(Step)} {_step} spaces the LongLoRA protocol's windows, and {nameof(Protocols)} [{string.Join(", ", _protocols)}] does not run it; " +
                $"leave {nameof(Step)} at its default ({PerplexityWindows.LongLoraStep}) or add {nameof(PerplexityProtocol.LongLora)} " +
                $"(the strided protocol's spacing is {nameof(Stride)}).", paramName);
        if (_stride != DefaultStride && !_protocols.Contains(PerplexityProtocol.Strided))
            throw new ArgumentException(
                $"{nameof(Stride)} {_stride} spaces the strided protocol's windows, and {nameof(Protocols)} [{string.Join(", ", _protocols)}] does not run it; " +
                $"leave {nameof(Stride)} at its default ({DefaultStride}) or add {nameof(PerplexityProtocol.Strided)} " +
                $"(the LongLoRA protocol's spacing is {nameof(Step)}).", paramName);
    }
}
