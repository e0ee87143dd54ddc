using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>Argument checks shared by the blockwise quantizers.</summary>
internal static class BlockwiseChecks
{
    public const int MinBlockSize = 32;
    public const int MaxBlockSize = 4096;

    public static int BlockSize(int blockSize, string name = "blockSize")
    {
        if (blockSize < MinBlockSize || blockSize > MaxBlockSize || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(name, blockSize,
                $"{name} must be a power of two in [{MinBlockSize}, {MaxBlockSize}]; got {blockSize}.");
        return blockSize;
    }

    public static void OutputDtype(ScalarType dtype, string name)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
            throw new ArgumentException($"{name} must be float32, bfloat16, float16 or float64; got {dtype}.", name);
    }

    public static void FloatDtype(ScalarType dtype, string name)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"{name} must be float32, bfloat16 or float16; got {dtype}.", name);
    }

    /// <summary>An 8-bit map to quantize with: 256 finite values, strictly ascending (the midpoint search needs that).</summary>
    public static void AscendingMap(float[] map, string name)
    {
        if (map.Length != 256)
            throw new ArgumentException($"{name} must have 256 entries; got {map.Length}.", name);
        for (int i = 0; i < map.Length; i++)
        {
            if (!float.IsFinite(map[i]))
                throw new ArgumentException($"{name} must hold finite values; entry {i} is {map[i]}.", name);
            if (i > 0 && !(map[i] > map[i - 1]))
                throw new ArgumentException($"{name} must be strictly ascending; entry {i} ({map[i]:R}) follows {map[i - 1]:R}.", name);
        }
    }

    /// <summary>Throws <see cref="NonFinite"/>'s exception when <paramref name="x"/> holds NaN or an infinity (one pass).</summary>
    public static void RequireFinite(Tensor x, string paramName, string? tensorName)
    {
        using var scope = NewDisposeScope();
        if (!x.isfinite().all().item<bool>()) throw NonFinite(x, paramName, tensorName);
    }

    /// <summary>
    /// The error for a tensor that holds NaN or an infinity: it names the tensor (or the parameter), the first such
    /// element's index and its value. Call only when <paramref name="x"/> is known to hold one.
    /// </summary>
    public static ArgumentException NonFinite(Tensor x, string paramName, string? tensorName)
    {
        using var scope = NewDisposeScope();
        var flat = x.detach().reshape(-1);
        long first = flat.isfinite().logical_not().to(ScalarType.Byte).argmax().item<long>();
        float value = flat[first].to(ScalarType.Float32).item<float>();
        var index = new long[x.dim()];
        long rest = first;
        for (int d = index.Length - 1; d >= 0; d--) { index[d] = rest % x.shape[d]; rest /= x.shape[d]; }
        string what = tensorName is null ? paramName : $"'{tensorName}'";
        string kind = float.IsNaN(value) ? "NaN" : value > 0 ? "+Infinity" : "-Infinity";
        return new ArgumentException(
            $"{what} holds {kind} at index [{string.Join(", ", index)}] (shape [{string.Join(", ", x.shape)}]); " +
            "4-bit quantization needs finite values (a non-finite weight would quantize to a model that computes NaN).",
            paramName);
    }
}
