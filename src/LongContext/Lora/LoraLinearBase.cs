using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// Describes a linear-like base layer that is not a TorchSharp <c>Linear</c> (for example a 4-bit linear), so that
/// injection can wrap it in a <see cref="LoraLinear"/>: its features and, for merging and the fused forward, dense
/// weight access.
/// </summary>
/// <param name="InFeatures">Input features of the base layer.</param>
/// <param name="OutFeatures">Output features of the base layer.</param>
/// <param name="Weight">Dense (out, in) weight access; null when the base cannot be merged into.</param>
public sealed record LoraLinearBase(long InFeatures, long OutFeatures, LoraBaseWeight? Weight);

/// <summary>
/// Recognises linear-like modules for <see cref="LoraInjector.Inject(nn.Module, LoraOptions, string, LoraLinearBaseResolver?)"/>:
/// returns a description for a module LoRA should treat as a linear layer, or null for any other module.
/// </summary>
/// <param name="module">A module of the tree.</param>
public delegate LoraLinearBase? LoraLinearBaseResolver(nn.Module module);
