using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>
/// Blockwise 4-bit quantization with bitsandbytes' semantics (<c>quantize_4bit</c> / <c>dequantize_4bit</c> as its CUDA
/// kernels compute them), in TorchSharp tensor ops on any device. The input is flattened and cut into blocks of
/// <c>blockSize</c> elements (the tail block padded with zeros); each block's scale is its absolute maximum, and each
/// element's code is chosen from x * (1 / absmax) in float32 by the kernel's thresholds (<c>dQuantizeNF4</c>,
/// <c>dQuantizeFP4</c>). Two codes share a byte, the first element in the high nibble. Optional double quantization
/// compresses the float32 scales to 8 bits.
/// </summary>
public static class Blockwise4Bit
{
    /// <summary>Block size of the nested (double) quantization of the scales, as in bitsandbytes.</summary>
    public const int NestedBlockSize = 256;

    /// <summary>Quantizes a floating-point tensor to 4 bits, producing the codes bitsandbytes' CUDA kernel writes.</summary>
    /// <remarks>
    /// Per block: absmax = max |x|, s = 1 / absmax (float32), y = x * s. NF4: the code is the number of the kernel's 15
    /// thresholds strictly below y (a value on a threshold takes the lower code). FP4: the sign bit is set iff y &lt; 0
    /// (-0.0 gives +0's code), the magnitude bits come from |y| against the kernel's 7 thresholds. An all-zero block has
    /// absmax 0 and y = NaN, which the kernel codes as 0 (NF4 -1.0, dequantizing to -0.0; FP4 +0). An odd element count
    /// pads the last byte's low nibble with the code of a zero in the tail block (NF4 7, FP4 0; 0 in an all-zero block).
    /// </remarks>
    /// <param name="x">Any shape; float32, bfloat16 or float16; any device; every value finite. Not modified.</param>
    /// <param name="type">The 4-bit data type.</param>
    /// <param name="blockSize">Elements per block: a power of two in [32, 4096] (64 by default, as bitsandbytes).</param>
    /// <param name="doubleQuant">When true the block scales are quantized again (bitsandbytes' <c>compress_statistics</c>):
    /// their mean (the float32 nearest the exact mean) is subtracted and kept as an offset, the rest is quantized
    /// blockwise to 8 bits (blocks of 256) with the dynamic map; this lowers the scale overhead from 32/blockSize to about
    /// 8/blockSize + 32/(256 blockSize) bits per element.</param>
    /// <param name="nestedMap">With <paramref name="doubleQuant"/>: the 256 ascending values of the 8-bit map (bnb's
    /// <c>nested_quant_map</c>); null takes <see cref="Codebooks.DynamicMap8Bit"/>. bitsandbytes builds its map with the
    /// running PyTorch, whose versions differ in the last bits of some entries: pass the map a checkpoint carries to
    /// reproduce its codes exactly.</param>
    /// <returns>The packed codes and scales on <paramref name="x"/>'s device.</returns>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not a float tensor, is empty, or holds NaN or an
    /// infinity (the message gives the first such element's index and value); <paramref name="nestedMap"/> is given
    /// without <paramref name="doubleQuant"/>, or is not 256 finite ascending values.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="blockSize"/> is not a power of two in range.</exception>
    public static QuantState4Bit Quantize(Tensor x, QuantType type = QuantType.Nf4, int blockSize = 64, bool doubleQuant = false,
                                          float[]? nestedMap = null)
        => Quantize(x, type, blockSize, doubleQuant, recordedDtype: null, paramName: nameof(x), tensorName: null, nestedMap);

    // recordedDtype: the dtype the state reports as original (defaults to x's dtype). paramName / tensorName: how errors
    // about x's values name it (the caller's parameter, and the tensor, e.g. a module path's weight).
    internal static QuantState4Bit Quantize(Tensor x, QuantType type, int blockSize, bool doubleQuant, ScalarType? recordedDtype,
                                            string paramName, string? tensorName, float[]? nestedMap = null)
    {
        ArgumentNullException.ThrowIfNull(x, paramName);
        BlockwiseChecks.FloatDtype(x.dtype, paramName);
        BlockwiseChecks.BlockSize(blockSize);
        if (!Enum.IsDefined(type))
            throw new ArgumentOutOfRangeException(nameof(type), type, $"type must be Nf4 or Fp4; got {type}.");
        if (nestedMap is not null)
        {
            if (!doubleQuant)
                throw new ArgumentException("nestedMap is the map of double quantization; pass doubleQuant: true with it, or no map.", nameof(nestedMap));
            BlockwiseChecks.AscendingMap(nestedMap, nameof(nestedMap));
        }
        if (x.numel() == 0)
            throw new ArgumentException($"{paramName} must have at least one element; got shape [{string.Join(", ", x.shape)}].", paramName);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flat = x.detach().reshape(-1).to(ScalarType.Float32);
        long n = flat.numel();
        long blocks = (n + blockSize - 1) / blockSize;
        var padded = n == blocks * blockSize ? flat : nn.functional.pad(flat, new long[] { 0, blocks * blockSize - n });
        var grid = padded.view(blocks, blockSize);
        var absmax = grid.abs().amax(new long[] { 1 });
        // max propagates NaN and keeps Inf, so the block maxima reveal any non-finite value without a full pass.
        if (!absmax.isfinite().all().item<bool>()) throw BlockwiseChecks.NonFinite(x, paramName, tensorName);

        // s = 1.0f / absmax, y = x * s, in float32, over the whole padded grid.
        var scaled = grid.mul(absmax.reciprocal().unsqueeze(1)).view(-1);
        var codes = (type == QuantType.Nf4 ? Nf4Codes(scaled) : Fp4Codes(scaled)).view(blocks, blockSize);
        // An all-zero block: s = inf and every y = 0 * inf = NaN, which fails each of the kernel's comparisons: code 0.
        // (Only such blocks hold NaN: non-finite inputs were refused above.)
        codes.masked_fill_(absmax.eq(0).unsqueeze(1), 0);
        long coded = n + (n & 1); // an odd count also codes the padding zero that shares the last byte
        var pairs = codes.view(-1).narrow(0, 0, coded).view(-1, 2);
        var packed = pairs.select(1, 0).mul(16).add_(pairs.select(1, 1));

        if (!doubleQuant)
            return new QuantState4Bit(packed, absmax, x.shape, blockSize, type, recordedDtype ?? x.dtype);

        // bnb: offset = absmax.mean(); the float32 nearest the exact mean is the float64 mean rounded once.
        float offset = (float)absmax.to(ScalarType.Float64).mean().item<double>();
        var (qcodes, nestedAbsmax) = Blockwise8Bit.Quantize(absmax - offset, NestedBlockSize, nestedMap ?? Codebooks.SharedDynamic);
        var nested = new NestedAbsmaxState(nestedAbsmax, NestedBlockSize, offset, nestedMap);
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
        if (n == blocks * bs) // whole blocks (n even): no padding nibble, no tail
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

    // dQuantizeNF4 on finite y: the number of thresholds strictly below y (bucketize's left side), uint8.
    private static Tensor Nf4Codes(Tensor scaled)
    {
        var thresholds = tensor(KernelThresholds.Nf4).to(scaled.device);
        return bucketize(scaled, thresholds, outInt32: true, right: false).to(ScalarType.Byte);
    }

    // dQuantizeFP4 on finite y: the sign bit iff y < 0, the magnitude bits from the rank of |y| among the thresholds.
    private static Tensor Fp4Codes(Tensor scaled)
    {
        var thresholds = tensor(KernelThresholds.Fp4).to(scaled.device);
        var rankBits = tensor(KernelThresholds.Fp4RankBits).to(scaled.device);
        var rank = bucketize(scaled.abs(), thresholds, outInt32: true, right: false);
        var codes = rankBits.index_select(0, rank);
        return codes.add_(scaled.lt(0).to(ScalarType.Byte).mul_(KernelThresholds.Fp4SignBit));
    }
}
