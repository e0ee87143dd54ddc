using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>
/// The attention core of a decoder layer as a module: q, k, v in, attention output out, per <see cref="Options"/>.
/// Dropout follows the module's training flag. With <see cref="AttentionMode.ShiftedSparse"/> the core runs S2-Attn
/// while training and, as LongLoRA does, full causal attention in evaluation (unless
/// <see cref="FullAttentionWhenEvaluating"/> is false), so <c>train()</c> / <c>eval()</c> switch the same weights
/// between the training and inference paths. The core has no parameters.
/// </summary>
public sealed class AttentionCore : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private AttentionOptions _options;

    /// <summary>Creates the core.</summary>
    /// <param name="options">Mode, S2 settings, dropout and scale (validated by the record).</param>
    public AttentionCore(AttentionOptions options) : base(nameof(AttentionCore))
    {
        _options = Guard.NotNull(options);
        RegisterComponents();
    }

    /// <summary>The settings in force; set a new record (e.g. <c>Options with { Mode = AttentionMode.Full }</c>) to switch.</summary>
    public AttentionOptions Options
    {
        get => _options;
        set => _options = Guard.NotNull(value);
    }

    /// <summary>
    /// When true (default), <see cref="AttentionMode.ShiftedSparse"/> applies only in training and evaluation uses
    /// full causal attention (LongLoRA's inference path). When false, the mode applies in both.
    /// </summary>
    public bool FullAttentionWhenEvaluating { get; set; } = true;

    /// <summary>The options actually used for a call in the current training state.</summary>
    public AttentionOptions EffectiveOptions
        => _options.Mode == AttentionMode.ShiftedSparse && !training && FullAttentionWhenEvaluating
            ? _options with { Mode = AttentionMode.Full }
            : _options;

    /// <summary>Attention without padding.</summary>
    /// <param name="q">Queries (B, Hq, N, D).</param>
    /// <param name="k">Keys (B, Hkv, N, D).</param>
    /// <param name="v">Values (B, Hkv, N, D).</param>
    /// <returns>(B, Hq, N, D).</returns>
    public override Tensor forward(Tensor q, Tensor k, Tensor v) => forward(q, k, v, null);

    /// <summary>Attention with an optional key padding mask.</summary>
    /// <param name="q">Queries (B, Hq, N, D).</param>
    /// <param name="k">Keys (B, Hkv, N, D).</param>
    /// <param name="v">Values (B, Hkv, N, D).</param>
    /// <param name="keyPaddingMask">(B, N) bool/integer, 1/true = attend, 0 = padding; or null.</param>
    /// <returns>(B, Hq, N, D); zero at padded query positions.</returns>
    public Tensor forward(Tensor q, Tensor k, Tensor v, Tensor? keyPaddingMask)
        => AttentionFunctions.Compute(q, k, v, EffectiveOptions, keyPaddingMask, training);
}
