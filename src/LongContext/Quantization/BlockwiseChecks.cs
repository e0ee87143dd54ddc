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
}
