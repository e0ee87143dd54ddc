using static TorchSharp.torch;

namespace LongContext.Benchmarks.Baselines;

/// <summary>
/// An eager NF4 dequantization recipe with shifts and masks: two 4-bit codes per byte (first element in the high
/// nibble, as bitsandbytes packs), a 16-entry codebook lookup, times the per-block absmax; with double quantization the
/// absmax values are first rebuilt from 8-bit codes, a float32 scale per 256 blocks and an offset.
/// </summary>
public static class EagerNf4
{
    /// <summary>The NF4 codebook of QLoRA (bitsandbytes' table), float32.</summary>
    public static readonly float[] Codebook =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
        -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
        0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>Blocks of absmax values sharing one float32 scale under double quantization (bitsandbytes: 256).</summary>
    public const int DoubleQuantBlock = 256;

    /// <summary>Random packed state of a (rows, cols) weight: codes (rows*cols/2) uint8, absmax (blocks) float32 or, with
    /// double quantization, absmax codes (blocks) uint8 plus a (256) float32 code map, (blocks/256) float32 scales and an offset.</summary>
    public sealed record State(Tensor Packed, Tensor Code, Tensor? Absmax, Tensor? AbsmaxCodes, Tensor? AbsmaxCodeMap, Tensor? AbsmaxScales, double Offset, long Rows, long Cols, int BlockSize) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose()
        {
            Packed.Dispose();
            Code.Dispose();
            Absmax?.Dispose();
            AbsmaxCodes?.Dispose();
            AbsmaxCodeMap?.Dispose();
            AbsmaxScales?.Dispose();
        }
    }

    /// <summary>Seeded random state (uniform codes, positive absmax) of the given shape on <paramref name="device"/>.</summary>
    public static State RandomState(long rows, long cols, int blockSize, bool doubleQuant, Device device)
    {
        long n = rows * cols, blocks = n / blockSize;
        if (n % blockSize != 0 || (doubleQuant && blocks % DoubleQuantBlock != 0))
        {
            throw new ArgumentException($"rows*cols = {n} must be a multiple of blockSize {blockSize} (times {DoubleQuantBlock} with double quantization).", nameof(rows));
        }
        using var scope = NewDisposeScope();
        Tensor packed = randint(0, 256, [n / 2], ScalarType.Int32, device).to(ScalarType.Byte);
        Tensor code = tensor(Codebook, ScalarType.Float32, device);
        if (!doubleQuant)
        {
            Tensor absmax = rand([blocks], ScalarType.Float32, device).add_(0.5);
            return new State(Detach(packed), Detach(code), Detach(absmax), null, null, null, 0, rows, cols, blockSize);
        }
        Tensor codes = randint(0, 256, [blocks], ScalarType.Int32, device).to(ScalarType.Byte);
        Tensor map = linspace(-1, 1, 256, ScalarType.Float32, device);
        Tensor scales = rand([blocks / DoubleQuantBlock], ScalarType.Float32, device).add_(0.5);
        return new State(Detach(packed), Detach(code), null, Detach(codes), Detach(map), Detach(scales), 0.75, rows, cols, blockSize);
    }

    private static Tensor Detach(Tensor t) => t.DetachFromDisposeScope();

    /// <summary>Dequantizes to a (rows, cols) tensor of <paramref name="dtype"/>.</summary>
    public static Tensor Dequantize(State s, ScalarType dtype)
    {
        Tensor absmax = s.Absmax
            ?? s.AbsmaxCodeMap!.index(s.AbsmaxCodes!.to(ScalarType.Int64)).view(-1, DoubleQuantBlock).mul(s.AbsmaxScales!.unsqueeze(1)).add(s.Offset).view(-1);
        Tensor hi = s.Packed.bitwise_right_shift(4);
        Tensor lo = s.Packed.bitwise_and(15);
        Tensor idx = stack([hi, lo], -1).view(-1).to(ScalarType.Int64);
        Tensor values = s.Code.index(idx).view(-1, s.BlockSize).mul(absmax.unsqueeze(1));
        return values.view(s.Rows, s.Cols).to(dtype);
    }

    /// <summary>
    /// Eager NF4 quantization by divide and argmin (the common port, and this library's method before it followed
    /// bitsandbytes' kernel): per block of <paramref name="blockSize"/>, x / absmax, then the index of the nearest
    /// codebook value by an argmin over the 16 distances, in chunks of 2^20 elements; the codes packed two a byte.
    /// Returns the packed codes (n/2) and the block absmax values; n must be a multiple of the block size.
    /// </summary>
    public static (Tensor Packed, Tensor Absmax) QuantizeArgmin(Tensor x, int blockSize)
    {
        Tensor grid = x.reshape(-1, blockSize).to(ScalarType.Float32);
        Tensor absmax = grid.abs().amax([1]);
        Tensor scaled = grid.div(absmax.clamp_min(1e-30).unsqueeze(1)).view(-1);
        Tensor code = tensor(Codebook, ScalarType.Float32, x.device);
        const long chunk = 1L << 20;
        var parts = new List<Tensor>();
        for (long start = 0; start < scaled.numel(); start += chunk)
        {
            Tensor part = scaled.narrow(0, start, Math.Min(chunk, scaled.numel() - start));
            parts.Add(part.unsqueeze(1).sub(code).abs_().argmin(1).to(ScalarType.Byte));
        }
        Tensor pairs = cat(parts).view(-1, 2);
        return (pairs.select(1, 0).mul(16).add_(pairs.select(1, 1)), absmax);
    }
}
