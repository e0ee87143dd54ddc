using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// Dense weight access for a base layer that is not a TorchSharp <c>Linear</c> (for example a 4-bit linear).
/// </summary>
/// <param name="Read">Returns the dense weight, shape (out, in), in the compute dtype, on the layer's device.</param>
/// <param name="Write">Replaces the weight with a dense (out, in) tensor (for example by requantizing it).</param>
/// <remarks>
/// <see cref="LoraLinear"/> uses it to merge and unmerge and, for the fused forward, to multiply the input by the
/// base weight and A in one pass.
/// </remarks>
public sealed record LoraBaseWeight(Func<Tensor> Read, Action<Tensor> Write);
