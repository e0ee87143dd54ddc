using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// What every decoder layer of one forward shares, built once by <see cref="LlamaModel"/>: the rotary tables of the
/// new tokens' positions and the key padding mask.
/// </summary>
public sealed class DecoderInputs
{
    /// <summary>Creates the inputs.</summary>
    /// <param name="rotary">cos/sin at the positions of the N tokens this forward computes.</param>
    /// <param name="keyPaddingMask">(B, M) bool, true = real token, over every key the layers attend (M = N without a
    /// cache); null when nothing is padded.</param>
    public DecoderInputs(RotaryPositions rotary, Tensor? keyPaddingMask = null)
    {
        Rotary = rotary ?? throw new ArgumentNullException(nameof(rotary));
        KeyPaddingMask = keyPaddingMask;
    }

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
