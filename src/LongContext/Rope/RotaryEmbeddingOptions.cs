namespace LongContext.Rope;

/// <summary>
/// Options of a <see cref="RotaryEmbedding"/>, validated as they are set: each field checks its value, and once the
/// head dimension, the window and the parameters are all set, <see cref="RopeParameters.Validate"/> checks the
/// parameters against them (construction and every <c>with</c>). An <see cref="ArgumentException"/> names the field.
/// </summary>
public sealed record RotaryEmbeddingOptions
{
    private readonly int _headDim, _maxPositionEmbeddings;
    private readonly RopeParameters _parameters = null!;
    private readonly RotaryLayout _layout;
    private readonly long? _positionLimit;

    /// <summary>Creates validated options.</summary>
    /// <param name="HeadDim">Attention head dimension D (q and k are (B, H, N, D)), positive.</param>
    /// <param name="MaxPositionEmbeddings">The model's <c>max_position_embeddings</c> (the dynamic NTK window; the default original window of YaRN / LongRoPE / Llama 3), positive.</param>
    /// <param name="Parameters">The rope configuration.</param>
    /// <param name="Layout">Pair layout of the head dimension: <see cref="RotaryLayout.HalfSplit"/> for HF checkpoints, <see cref="RotaryLayout.Interleaved"/> for Meta / GPT-J weights.</param>
    /// <exception cref="ArgumentException">A value is invalid, or <paramref name="Parameters"/> do not fit the head dimension (named in the message).</exception>
#pragma warning disable IDE1006 // PascalCase parameter names, so that named arguments read as the properties they set
    public RotaryEmbeddingOptions(int HeadDim, int MaxPositionEmbeddings, RopeParameters Parameters, RotaryLayout Layout = RotaryLayout.HalfSplit)
#pragma warning restore IDE1006
    {
        this.HeadDim = HeadDim;
        this.MaxPositionEmbeddings = MaxPositionEmbeddings;
        this.Parameters = Parameters;
        this.Layout = Layout;
    }

    /// <summary>Attention head dimension D, positive.</summary>
    public int HeadDim
    {
        get => _headDim;
        init { _headDim = Guard.Positive(value, nameof(HeadDim)); CheckParameters(); }
    }

    /// <summary>The model's <c>max_position_embeddings</c>, positive.</summary>
    public int MaxPositionEmbeddings
    {
        get => _maxPositionEmbeddings;
        init { _maxPositionEmbeddings = Guard.Positive(value, nameof(MaxPositionEmbeddings)); CheckParameters(); }
    }

    /// <summary>The rope configuration, checked against <see cref="HeadDim"/> and <see cref="MaxPositionEmbeddings"/>.</summary>
    public RopeParameters Parameters
    {
        get => _parameters;
        init { _parameters = value ?? throw new ArgumentNullException(nameof(Parameters)); CheckParameters(); }
    }

    /// <summary>Pair layout of the head dimension.</summary>
    public RotaryLayout Layout
    {
        get => _layout;
        init => _layout = Enum.IsDefined(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(Layout), value, $"{nameof(Layout)} must be HalfSplit or Interleaved; got {(int)value}.");
    }

    /// <summary>
    /// Optional hard limit, positive: position ids at or past it throw instead of growing the cos/sin cache (for
    /// deployments that must not extrapolate past a trained window). <see langword="null"/> (the default) grows on demand.
    /// </summary>
    public long? PositionLimit
    {
        get => _positionLimit;
        init => _positionLimit = value is long limit ? Guard.Positive(limit, nameof(PositionLimit)) : null;
    }

    /// <summary>The relation between the fields, checked once all three are set (the constructor sets them in order).</summary>
    private void CheckParameters()
    {
        if (_parameters is not null && _headDim > 0 && _maxPositionEmbeddings > 0)
            _parameters.Validate(_headDim, _maxPositionEmbeddings);
    }
}
