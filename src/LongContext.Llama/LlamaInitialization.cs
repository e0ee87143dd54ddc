using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// HF transformers' initialization of a Llama for training from scratch (<c>LlamaPreTrainedModel._init_weights</c>):
/// every linear and embedding weight drawn from N(0, <c>initializer_range</c>²), biases zero, the padding row of the
/// embedding zero, RMSNorm weights one. A freshly constructed <see cref="LlamaForCausalLM"/> has TorchSharp's
/// module defaults instead (N(0, 1) embeddings, which make tied output logits far too large to train from).
/// </summary>
public static class LlamaInitialization
{
    /// <summary>HF's default <c>initializer_range</c>.</summary>
    public const double DefaultStd = 0.02;

    /// <summary>Re-initializes <paramref name="model"/> in place, drawing from torch's global generator.</summary>
    /// <param name="model">The model (dense, without adapters).</param>
    /// <param name="std">Standard deviation of the weights, positive and finite.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="std"/> is not positive and finite.</exception>
    public static void Apply(LlamaForCausalLM model, double std = DefaultStd)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!(std > 0) || !double.IsFinite(std))
            throw new ArgumentOutOfRangeException(nameof(std), std, $"{nameof(std)} must be positive and finite; got {std}.");
        long? padding = model.Config.PaddingIndex;
        using var noGrad = torch.no_grad();
        foreach (var (_, module) in model.named_modules())
        {
            switch (module)
            {
                case Linear linear:
                    linear.weight!.normal_(0, std);
                    linear.bias?.zero_();
                    break;
                case Embedding embedding:
                    embedding.weight!.normal_(0, std);
                    if (padding is long p) embedding.weight![p].zero_();
                    break;
                case RmsNorm norm:
                    foreach (var (_, parameter) in norm.named_parameters(recurse: false)) parameter.fill_(1.0);
                    break;
            }
        }
    }
}
