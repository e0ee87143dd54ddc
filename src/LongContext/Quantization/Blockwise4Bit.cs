using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>
/// Blockwise 4-bit quantization with bitsandbytes' semantics (<c>quantize_4bit</c> / <c>dequantize_4bit</c>), in
/// TorchSharp tensor ops on any device: the input is flattened and cut into blocks of <c>blockSize</c> elements (the
/// tail block padded with zeros and given its own scale); each block's scale is its absolute maximum; each element
/// becomes the index of the codebook value nearest to x / absmax (ties to the lower index); two codes share a byte,
/// the first element in the high nibble. Optional double quantization compresses the float32 scales to 8 bits.
/// </summary>
public static class Blockwise4Bit
{
    /// <summary>Block size of the nested (double) quantization of the scales, as in bitsandbytes.</summary>
    public const int NestedBlockSize = 256;

    // Elements per chunk of the nearest-code search (bounds the (chunk, 16) distance temporary).
    private const long SearchChunk = 1L << 20;

    /// <summary>Quantizes a floating-point tensor to 4 bits.</summary>
    /// <param name="x">Any shape; float32, bfloat16 or float16; any device. Not modified.</param>
    /// <param name="type">The 4-bit data type.</param>
    /// <param name="blockSize">Elements per block: a power of two in [32, 4096] (64 by default, as bitsandbytes).</param>
    /// <param name="doubleQuant">When true the block scales are quantized again (bitsandbytes' <c>compress_statistics</c>):
    /// their mean is subtracted and kept as an offset, the rest is quantized blockwise to 8 bits (blocks of 256) with the
    /// dynamic map; this lowers the scale overhead from 32/blockSize to about 8/blockSize + 32/(256 blockSize) bits per element.</param>
    /// <returns>The packed codes and scales on <paramref name="x"/>'s device.</returns>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not a float tensor or is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="blockSize"/> is not a power of two in range.</exception>
    public static QuantState4Bit Quantize(Tensor x, QuantType type = QuantType.Nf4, int blockSize = 64, bool doubleQuant = false)
        => Quantize(x, type, blockSize, doubleQuant, null);

    // recordedDtype: the dtype the state reports as original (defaults to x's dtype).
    internal static QuantState4Bit Quantize(Tensor x, QuantType type, int blockSize, bool doubleQuant, ScalarType? recordedDtype)
    {
        ArgumentNullException.ThrowIfNull(x);
        BlockwiseChecks.FloatDtype(x.dtype, nameof(x));
        BlockwiseChecks.BlockSize(blockSize);
        if (!Enum.IsDefined(type))
            throw new ArgumentOutOfRangeException(nameof(type), type, $"type must be Nf4 or Fp4; got {type}.");
        if (x.numel() == 0)
            throw new ArgumentException($"x must have at least one element; got shape [{string.Join(", ", x.shape)}].", nameof(x));

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flat = x.detach().reshape(-1).to(ScalarType.Float32);
        long n = flat.numel();
        long blocks = (n + blockSize - 1) / blockSize;
        var padded = n == blocks * blockSize ? flat : nn.functional.pad(flat, new long[] { 0, blocks * blockSize - n });
        var grid = padded.view(blocks, blockSize);
        var absmax = grid.abs().amax(new long[] { 1 });
        var divisor = where(absmax.eq(0), ones_like(absmax), absmax);
        var scaled = (grid / divisor.unsqueeze(1)).clamp(-1, 1).reshape(-1).narrow(0, 0, n);

        var codes = NearestCodes(scaled, Codebooks.Shared(type));
        if (n % 2 == 1) codes = cat(new[] { codes, zeros(1, ScalarType.Byte, device: codes.device) });
        var pairs = codes.view(-1, 2);
        var packed = pairs.select(1, 0) * 16 + pairs.select(1, 1);

        if (!doubleQuant)
            return new QuantState4Bit(packed, absmax, x.shape, blockSize, type, recordedDtype ?? x.dtype);

        float offset = absmax.mean().item<float>();
        var (qcodes, nestedAbsmax) = Blockwise8Bit.Quantize(absmax - offset, NestedBlockSize, Codebooks.SharedDynamic);
        var nested = new NestedAbsmaxState(nestedAbsmax, NestedBlockSize, offset);
        return new QuantState4Bit(packed, qcodes, x.shape, blockSize, type, recordedDtype ?? x.dtype, nested);
    }

    /// <summary>
    /// Dequantizes a 4-bit state: out[i] = code[c_i] * absmax[i / blockSize], computed in float32 (as bitsandbytes'
    /// kernels do) and returned in the compute dtype. Implemented as one gather of (high, low) code pairs from a
    /// 256-entry byte table and one broadcast multiply by the block scales.
    /// </summary>
    /// <param name="state">The quantized tensor.</param>
    /// <param name="computeDtype">Output dtype (float32, bfloat16, float16, or float64 for reference checks); defaults to
    /// the original dtype. The float32 products are rounded once into it.</param>
    /// <returns>A tensor of the original shape on the state's device; not part of any autograd graph.</returns>
    public static Tensor Dequantize(QuantState4Bit state, ScalarType? computeDtype = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ScalarType dtype = computeDtype ?? state.OriginalDtype;
        BlockwiseChecks.OutputDtype(dtype, nameof(computeDtype));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var absmax = state.DequantizedAbsmax();
        var values = state.PairTable().index_select(0, state.Packed.to(ScalarType.Int32)).view(-1);
        long n = state.ElementCount;
        long blocks = state.BlockCount;
        long bs = state.BlockSize;
        Tensor result;
        if (values.numel() == blocks * bs)
        {
            result = values.view(blocks, bs).mul_(absmax.unsqueeze(1)).view(state.Shape);
        }
        else
        {
            var padded = nn.functional.pad(values, new long[] { 0, blocks * bs - values.numel() });
            result = padded.view(blocks, bs).mul_(absmax.unsqueeze(1)).view(-1).narrow(0, 0, n).reshape(state.Shape);
        }
        if (dtype != ScalarType.Float32) result = result.to(dtype);
        return result.MoveToOuterDisposeScope();
    }

    // Index of the nearest code value (first index on ties, like argmin), uint8, searched in chunks.
    private static Tensor NearestCodes(Tensor scaled, float[] code)
    {
        var codeTensor = tensor(code).to(scaled.device);
        long n = scaled.numel();
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += SearchChunk)
        {
            long len = Math.Min(SearchChunk, n - start);
            var chunk = scaled.narrow(0, start, len);
            parts.Add((chunk.unsqueeze(1) - codeTensor.unsqueeze(0)).abs_().argmin(1).to(ScalarType.Byte));
        }
        return parts.Count == 1 ? parts[0] : cat(parts);
    }
}
