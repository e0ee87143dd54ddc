using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// What <see cref="LoraLinear"/> and <see cref="LoraEmbedding"/> share: a frozen base layer, one or more named
/// adapters with one active, merge/unmerge and an on/off switch.
/// </summary>
public interface ILoraLayer
{
    /// <summary>The wrapped (frozen) layer; registered as the child <c>base_layer</c>, as in peft.</summary>
    nn.Module<Tensor, Tensor> BaseLayer { get; }

    /// <summary>Names of the adapters this layer holds, in the order they were added.</summary>
    IReadOnlyList<string> AdapterNames { get; }

    /// <summary>The adapter used by forward, merge and <see cref="DeltaWeight"/>.</summary>
    string ActiveAdapter { get; }

    /// <summary>Whether the active adapter is currently added into the base weight.</summary>
    bool Merged { get; }

    /// <summary>When false, forward returns the base layer's output alone. Cannot change while merged.</summary>
    bool AdapterEnabled { get; set; }

    /// <summary>The options an adapter was created with.</summary>
    /// <param name="adapterName">An adapter this layer holds.</param>
    LoraOptions GetOptions(string adapterName);

    /// <summary>Adds a new adapter (initialised per its options); it does not become active.</summary>
    /// <param name="adapterName">A new name without dots.</param>
    /// <param name="options">Its hyper-parameters.</param>
    void AddAdapter(string adapterName, LoraOptions options);

    /// <summary>Makes an adapter the active one; only its A and B require gradients afterwards.</summary>
    /// <param name="adapterName">An adapter this layer holds.</param>
    void SetActiveAdapter(string adapterName);

    /// <summary>The A matrix of an adapter: (r, in) for Linear, (r, num_embeddings) for Embedding.</summary>
    /// <param name="adapterName">An adapter this layer holds.</param>
    Parameter LoraA(string adapterName);

    /// <summary>The B matrix of an adapter: (out, r) for Linear, (embedding_dim, r) for Embedding.</summary>
    /// <param name="adapterName">An adapter this layer holds.</param>
    Parameter LoraB(string adapterName);

    /// <summary>The active adapter's weight change in the base weight's layout (scaling included).</summary>
    Tensor DeltaWeight();

    /// <summary>Adds the active adapter into the base weight.</summary>
    void Merge();

    /// <summary>Subtracts the merged adapter from the base weight again.</summary>
    void Unmerge();
}
