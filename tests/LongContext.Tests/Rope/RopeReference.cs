using LongContext.Rope;
using static TorchSharp.torch;

namespace LongContext.Tests.Rope;

/// <summary>Explicit float64 rotary math, written independently of the library, used as the reference in property tests.</summary>
internal static class RopeReference
{
    /// <summary>Devices the device-parameterized tests run on: the CPU, plus CUDA when available.</summary>
    public static IEnumerable<string> DeviceNames() => cuda.is_available() ? ["cpu", "cuda"] : ["cpu"];

    /// <summary>Index map from the half-split order to the interleaved order: half[j] = inter[P[j]].</summary>
    public static long[] HalfFromInterleaved(int headDim, int rotaryDim)
    {
        int h = rotaryDim / 2;
        var p = new long[headDim];
        for (int j = 0; j < headDim; j++) p[j] = j >= rotaryDim ? j : j < h ? 2 * j : 2 * (j - h) + 1;
        return p;
    }

    /// <summary>
    /// Rotates x (B, H, N, D) in float64: pair (a, b) at position p with angle p * invFreq[i] (angle in float64)
    /// becomes s * (a cos - b sin, b cos + a sin); dims past rotaryDim pass through. positions (B, N).
    /// </summary>
    public static Tensor Rotate(Tensor x, double[] invFreq, long[,] positions, double scaling, RotaryLayout layout, int rotaryDim, bool inverse = false)
    {
        double[] data = x.to(float64).cpu().data<double>().ToArray();
        long b = x.shape[0], hN = x.shape[1], n = x.shape[2], d = x.shape[3];
        var output = (double[])data.Clone();
        int half = rotaryDim / 2;
        for (long bi = 0; bi < b; bi++)
        for (long hi = 0; hi < hN; hi++)
        for (long ni = 0; ni < n; ni++)
        {
            long pos = positions[positions.GetLength(0) == 1 ? 0 : bi, ni];
            long baseIndex = ((bi * hN + hi) * n + ni) * d;
            for (int i = 0; i < half; i++)
            {
                double angle = pos * invFreq[i];
                double c = Math.Cos(angle), s = Math.Sin(angle) * (inverse ? -1 : 1);
                long ia = baseIndex + (layout == RotaryLayout.HalfSplit ? i : 2 * i);
                long ib = baseIndex + (layout == RotaryLayout.HalfSplit ? i + half : 2 * i + 1);
                double xa = data[ia], xb = data[ib];
                output[ia] = scaling * (xa * c - xb * s);
                output[ib] = scaling * (xb * c + xa * s);
            }
        }
        return tensor(output, x.shape);
    }

    /// <summary>Positions 0..n-1 as a (1, n) array.</summary>
    public static long[,] Range(long n, long offset = 0)
    {
        var p = new long[1, n];
        for (long i = 0; i < n; i++) p[0, i] = offset + i;
        return p;
    }

    /// <summary>A (B, N) position tensor from an array.</summary>
    public static Tensor Ids(long[,] positions)
    {
        long b = positions.GetLength(0), n = positions.GetLength(1);
        var flat = new long[b * n];
        for (long i = 0; i < b; i++) for (long j = 0; j < n; j++) flat[i * n + j] = positions[i, j];
        return tensor(flat, [b, n]);
    }

    /// <summary>The float32 inverse frequencies of a module, widened to float64.</summary>
    public static double[] Frequencies(RotaryEmbedding rope) => rope.InverseFrequencies.to(float64).data<double>().ToArray();
}
