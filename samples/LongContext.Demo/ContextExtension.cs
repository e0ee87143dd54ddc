using LongContext.Attention;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Rope;

namespace LongContext.Demo;

/// <summary>
/// The LongLoRA recipe as the demo applies it: rope scaling for the target length (linear Position Interpolation,
/// or none for plain extrapolation), shifted sparse attention in training and full attention in evaluation, LoRA on
/// q, k, v, o, and trainable embeddings and norms.
/// </summary>
public static class ContextExtension
{
    /// <summary>Prepares <paramref name="model"/> for fine-tuning at <paramref name="targetLength"/>.</summary>
    /// <param name="model">A model trained at <paramref name="originalLength"/>.</param>
    /// <param name="originalLength">The context it was trained at.</param>
    /// <param name="targetLength">The context to extend to.</param>
    /// <param name="interpolate">Linear PI with factor ceil(target / original), or plain extrapolation.</param>
    /// <param name="loraRank">LoRA rank (alpha = 2 x rank).</param>
    /// <returns>What the injection wrapped and how many parameters train.</returns>
    public static LoraInjectionReport Apply(LlamaForCausalLM model, int originalLength, int targetLength, bool interpolate, int loraRank)
    {
        ArgumentNullException.ThrowIfNull(model);
        int factor = (targetLength + originalLength - 1) / originalLength;
        var rope = interpolate
            ? model.Config.Rope with { Type = RopeType.Linear, Factor = factor }
            : model.Config.Rope;
        model.UpdateRope(model.Config with { Rope = rope, MaxPositionEmbeddings = targetLength });
        model.ConfigureAttention(new AttentionOptions { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.25 });
        return LoraInjector.Inject(model, new LoraOptions
        {
            Rank = loraRank,
            Alpha = 2 * loraRank,
            TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"],
            ModulesToSave = ["embed_tokens", "norm"],
        });
    }

    /// <summary>Linear PI at evaluation only (no fine-tuning): the rope factor changes, the weights do not.</summary>
    /// <param name="model">A model trained at <paramref name="originalLength"/>.</param>
    /// <param name="originalLength">The context it was trained at.</param>
    /// <param name="targetLength">The context to extend to.</param>
    public static void InterpolateOnly(LlamaForCausalLM model, int originalLength, int targetLength)
    {
        ArgumentNullException.ThrowIfNull(model);
        int factor = (targetLength + originalLength - 1) / originalLength;
        var rope = model.Config.Rope with { Type = RopeType.Linear, Factor = factor };
        model.UpdateRope(model.Config with { Rope = rope, MaxPositionEmbeddings = targetLength });
    }
}
