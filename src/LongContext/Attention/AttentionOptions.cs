namespace LongContext.Attention;

/// <summary>
/// Settings of the attention core. Every value is validated in its <c>init</c> accessor, with a message naming the
/// property: an invalid value never makes an options object.
/// </summary>
public sealed record AttentionOptions
{
    private readonly AttentionMode _mode = AttentionMode.Full;
    private readonly double _groupSizeRatio = 0.25;
    private readonly S2WrapPolicy _wrapPolicy = S2WrapPolicy.NoWrap;
    private readonly double _dropout;
    private readonly double? _scale;

    /// <summary>Full causal attention (default) or shifted sparse attention.</summary>
    public AttentionMode Mode
    {
        get => _mode;
        init => _mode = Enum.IsDefined(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(Mode), value, $"{nameof(Mode)} must be Full or ShiftedSparse; got {(int)value}.");
    }

    /// <summary>
    /// S2 group size as a fraction of the sequence length, in (0, 1]; LongLoRA's default 1/4. The group size is
    /// G = floor(N * ratio) as in LongLoRA (<c>int(q_len * group_size_ratio)</c>); it must divide N and be even.
    /// Read only in <see cref="AttentionMode.ShiftedSparse"/>; kept unread in Full mode (not refused, unlike other
    /// options' unused settings) so that <c>s2 with { Mode = AttentionMode.Full }</c>, as <see cref="AttentionCore"/>
    /// derives its evaluation options, keeps the training settings for the way back.
    /// </summary>
    public double GroupSizeRatio
    {
        get => _groupSizeRatio;
        init => _groupSizeRatio = value > 0 && value <= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(GroupSizeRatio), value, $"{nameof(GroupSizeRatio)} must be in (0, 1]; got {value}.");
    }

    /// <summary>
    /// How the shifted heads treat the sequence ends; <see cref="S2WrapPolicy.NoWrap"/> (no future-token leak) by
    /// default. Read only in <see cref="AttentionMode.ShiftedSparse"/> (see <see cref="GroupSizeRatio"/>).
    /// </summary>
    public S2WrapPolicy WrapPolicy
    {
        get => _wrapPolicy;
        init => _wrapPolicy = Enum.IsDefined(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(WrapPolicy), value, $"{nameof(WrapPolicy)} must be NoWrap or Roll; got {(int)value}.");
    }

    /// <summary>Dropout probability on the attention probabilities, in [0, 1); applied only in training.</summary>
    public double Dropout
    {
        get => _dropout;
        init => _dropout = Guard.DropoutProbability(value, nameof(Dropout));
    }

    /// <summary>Softmax scale applied to q·k; null means 1/sqrt(D). Must be positive and finite when set.</summary>
    public double? Scale
    {
        get => _scale;
        init => _scale = value is null || (value > 0 && double.IsFinite(value.Value)) ? value
            : throw new ArgumentOutOfRangeException(nameof(Scale), value, $"{nameof(Scale)} must be null or a positive finite number; got {value}.");
    }
}
