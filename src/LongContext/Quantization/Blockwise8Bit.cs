using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>
/// bitsandbytes' blockwise 8-bit quantization with the dynamic map, as used for double quantization of the 4-bit
/// block scales, with the CUDA kernel's choices (<c>kQuantizeBlockwise</c> with <c>dQuantize&lt;0&gt;</c>): per block,
/// scale = max |x| and y = x * (1 / scale) in float32; the code is the nearer map entry, decided at the float32
/// midpoints (c[i] + c[i+1]) * 0.5 between neighbours; a value exactly on a midpoint takes the even index of the two
/// (the kernel's binary search always ends on an even pivot and keeps it); NaN (an all-zero block, 0 * inf) takes 0.
/// </summary>
internal static class Blockwise8Bit
{
    /// <summary>Quantizes a float32 vector (n) in blocks; returns uint8 codes (n) and float32 scales (ceil(n/blockSize)).</summary>
    public static (Tensor Codes, Tensor Absmax) Quantize(Tensor x, int blockSize, float[] map)
    {
        using var scope = NewDisposeScope();
        var flat = x.reshape(-1).to(ScalarType.Float32);
        long n = flat.numel();
        long blocks = (n + blockSize - 1) / blockSize;
        var padded = n == blocks * blockSize ? flat : nn.functional.pad(flat, new long[] { 0, blocks * blockSize - n });
        var grid = padded.view(blocks, blockSize);
        var absmax = grid.abs().amax(new long[] { 1 });
        var normalized = grid.mul(absmax.reciprocal().unsqueeze(1)).view(-1).narrow(0, 0, n);
        var midpoints = Midpoints(map, x.device);
        var lower = bucketize(normalized, midpoints, outInt32: true, right: false); // a tie gives the lower index
        var upper = bucketize(normalized, midpoints, outInt32: true, right: true);  // and here the upper one
        var codes = where(lower.remainder(2).eq(0), lower, upper).to(ScalarType.Byte);
        codes.masked_fill_(normalized.isnan(), 0);
        return (codes.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary>Dequantizes codes (n) with a nested state: map[code] * absmax[i / blockSize] + offset, float32 (n).</summary>
    public static Tensor Dequantize(Tensor codes, NestedAbsmaxState state)
    {
        using var scope = NewDisposeScope();
        long n = codes.numel();
        int bs = state.BlockSize;
        long blocks = (n + bs - 1) / bs;
        if (state.Absmax.numel() != blocks)
            throw new ArgumentException(
                $"nested absmax has {state.Absmax.numel()} entries but {n} codes in blocks of {bs} need {blocks}.", nameof(state));
        var map = tensor(state.Map).to(codes.device);
        var values = map.index_select(0, codes.reshape(-1).to(ScalarType.Int64));
        var padded = n == blocks * bs ? values : nn.functional.pad(values, new long[] { 0, blocks * bs - n });
        var scaled = (padded.view(blocks, bs) * state.Absmax.unsqueeze(1)).reshape(-1).narrow(0, 0, n);
        return (scaled + state.Offset).MoveToOuterDisposeScope();
    }

    private static Tensor Midpoints(float[] map, Device device)
    {
        var mids = new float[map.Length - 1];
        for (int i = 0; i < mids.Length; i++) mids[i] = (map[i] + map[i + 1]) * 0.5f;
        return tensor(mids).to(device);
    }
}
