using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>
/// The attention core of a decoder layer as a module: q, k, v in, attention output out. It is the one owner of the
/// attention mode: it holds the options used in training mode (<see cref="TrainingOptions"/>, e.g. LongLoRA's
/// S2-Attn) and those used in evaluation mode (<see cref="EvaluationOptions"/>, full causal attention by default), and
/// <c>train()</c> / <c>eval()</c> pick between them, so the same weights switch between the training and inference
/// paths. Dropout follows the module's training flag. The core has no parameters.
/// </summary>
public sealed class AttentionCore : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    /// <summary>Creates the core.</summary>
    /// <param name="training">Options in force in training mode (validated by the record).</param>
    /// <param name="evaluation">Options in force in evaluation mode; null takes <paramref name="training"/> with
    /// <see cref="AttentionMode.Full"/> and no dropout (LongLoRA's inference path).</param>
    public AttentionCore(AttentionOptions training, AttentionOptions? evaluation = null) : base(nameof(AttentionCore))
    {
        Configure(training, evaluation);
        RegisterComponents();
    }

    /// <summary>Options in force after <c>train()</c>.</summary>
    public AttentionOptions TrainingOptions { get; private set; } = null!;

    /// <summary>Options in force after <c>eval()</c>.</summary>
    public AttentionOptions EvaluationOptions { get; private set; } = null!;

    /// <summary>The options a call uses in the current training state.</summary>
    public AttentionOptions ActiveOptions => training ? TrainingOptions : EvaluationOptions;

    /// <summary>Sets both modes' options at once (the model does this once per layer, e.g. for a recipe).</summary>
    /// <param name="training">Options in force in training mode.</param>
    /// <param name="evaluation">Options in force in evaluation mode; null takes <paramref name="training"/> with
    /// <see cref="AttentionMode.Full"/> and no dropout.</param>
    public void Configure(AttentionOptions training, AttentionOptions? evaluation = null)
    {
        Guard.NotNull(training);
        TrainingOptions = training;
        EvaluationOptions = evaluation ?? training with { Mode = AttentionMode.Full, Dropout = 0 };
    }

    /// <summary>Attention without padding.</summary>
    /// <param name="q">Queries (B, Hq, N, D).</param>
    /// <param name="k">Keys (B, Hkv, M, D), M &gt;= N (M &gt; N: cached keys, full attention only; see <see cref="AttentionFunctions"/>).</param>
    /// <param name="v">Values (B, Hkv, M, D).</param>
    /// <returns>(B, Hq, N, D).</returns>
    public override Tensor forward(Tensor q, Tensor k, Tensor v) => forward(q, k, v, null);

    /// <summary>Attention with an optional key padding mask.</summary>
    /// <param name="q">Queries (B, Hq, N, D).</param>
    /// <param name="k">Keys (B, Hkv, M, D), M &gt;= N.</param>
    /// <param name="v">Values (B, Hkv, M, D).</param>
    /// <param name="keyPaddingMask">(B, M) bool/integer, 1/true = attend, 0 = padding; or null.</param>
    /// <returns>(B, Hq, N, D); zero at padded query positions.</returns>
    public Tensor forward(Tensor q, Tensor k, Tensor v, Tensor? keyPaddingMask)
        => AttentionFunctions.Compute(q, k, v, ActiveOptions, keyPaddingMask, training);
}
