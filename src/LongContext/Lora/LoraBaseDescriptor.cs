using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// How a LoRA layer reaches the frozen layer it wraps: the module it calls in forward and the one place its dense
/// weight is read and merged into. Resolved once, when the LoRA layer is built, as peft's dispatchers pick a layer
/// class per base type: <see cref="LinearBaseDescriptor"/> for linear-like bases (<see cref="LoraLinear"/>),
/// <see cref="EmbeddingBaseDescriptor"/> for embedding tables (<see cref="LoraEmbedding"/>).
/// </summary>
public abstract class LoraBaseDescriptor
{
    private protected LoraBaseDescriptor(nn.Module<Tensor, Tensor> module) => Module = Guard.NotNull(module);

    /// <summary>The base layer itself; registered as the LoRA layer's child <c>base_layer</c>, as in peft.</summary>
    public nn.Module<Tensor, Tensor> Module { get; }

    /// <summary>Dtype of the dense weight (the compute dtype for a quantized base); adapters derive their dtype from it.</summary>
    public abstract ScalarType WeightDtype { get; }

    /// <summary>Device of the base weight; adapters are created there.</summary>
    public abstract Device Device { get; }

    /// <summary>Adds a dense tensor to the base weight, in the weight's own layout (merge and unmerge).</summary>
    /// <param name="delta">Same shape as the weight; any float dtype (converted).</param>
    /// <exception cref="NotSupportedException">The base cannot be written (merging is not possible).</exception>
    public abstract void AddToWeight(Tensor delta);

    /// <summary>
    /// The descriptor of a built-in TorchSharp layer: <see cref="LinearBaseDescriptor.Of"/> for a <c>Linear</c>,
    /// <see cref="EmbeddingBaseDescriptor.Of"/> (no padding index) for an <c>Embedding</c>, null for anything else.
    /// </summary>
    /// <param name="module">A module of a model.</param>
    public static LoraBaseDescriptor? ForBuiltIn(nn.Module module) => module switch
    {
        Linear linear => LinearBaseDescriptor.Of(linear),
        Embedding embedding => EmbeddingBaseDescriptor.Of(embedding),
        _ => null,
    };
}

/// <summary>
/// Describes modules LoRA should wrap that <see cref="LoraBaseDescriptor.ForBuiltIn"/> does not (a 4-bit linear,
/// an embedding with a padding index, a custom layer), as peft's extra dispatchers do; returns null for every other
/// module. Used by <see cref="LoraInjector.Inject"/> and <see cref="PeftAdapter.Load"/> before the built-in rule.
/// </summary>
/// <param name="module">A module of the tree.</param>
public delegate LoraBaseDescriptor? LoraBaseResolver(nn.Module module);
