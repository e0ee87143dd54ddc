using LongContext.Llama.Generation;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// What every decoder layer of one forward shares, built once by <see cref="LlamaModel"/>: the rotary tables of the
/// new tokens' positions, the key padding mask and, when decoding with a KV cache, the layer's cache slot.
/// </summary>
public sealed class DecoderInputs
{
    /// <summary>Creates the inputs.</summary>
    /// <param name="rotary">cos/sin at the positions of the N tokens this forward computes.</param>
    /// <param name="keyPaddingMask">(B, M) bool, true = real token, over every key the layers attend (M = N without a
    /// cache, cached + N with one); null when nothing is padded.</param>
    /// <param name="cache">The layer's KV cache slot: the new keys and values are appended and attention runs over
    /// all of them; null for a plain forward.</param>
    public DecoderInputs(RotaryPositions rotary, Tensor? keyPaddingMask = null, LayerKvCache? cache = null)
    {
        Rotary = rotary ?? throw new ArgumentNullException(nameof(rotary));
        KeyPaddingMask = keyPaddingMask;
        Cache = cache;
    }

    /// <summary>The layer's KV cache slot, or null.</summary>
    public LayerKvCache? Cache { get; }

    /// <summary>These inputs for one layer's cache slot.</summary>
    /// <param name="cache">The slot.</param>
    public DecoderInputs WithCache(LayerKvCache cache) => new(Rotary, KeyPaddingMask, cache);

    /// <summary>cos/sin at the positions of the tokens this forward computes.</summary>
    public RotaryPositions Rotary { get; }

    /// <summary>(B, M) bool key mask, true = real token; null when nothing is padded.</summary>
    public Tensor? KeyPaddingMask { get; }

    /// <summary>The tensors an activation checkpoint must keep alive for the recompute, in a fixed order.</summary>
    internal IReadOnlyList<Tensor> ContextTensors => KeyPaddingMask is null ? Rotary.Tensors : [.. Rotary.Tensors, KeyPaddingMask];

    /// <summary>The inputs rebuilt from <see cref="ContextTensors"/> (inside the checkpoint's recompute).</summary>
    internal DecoderInputs FromContext(IReadOnlyList<Tensor> context)
        => new(RotaryPositions.FromTensors(context, 0, Rotary.Layout, Rotary.HeadDim), KeyPaddingMask is null ? null : context[5]);
}
