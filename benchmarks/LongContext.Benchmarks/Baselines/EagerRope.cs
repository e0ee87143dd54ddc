using static TorchSharp.torch;

namespace LongContext.Benchmarks.Baselines;

/// <summary>
/// The HF eager RoPE recipe (half-split layout): cos/sin gathered from a float32 cache by position, cast to the compute
/// dtype, then <c>x * cos + rotate_half(x) * sin</c> for q and k.
/// </summary>
public static class EagerRope
{
    /// <summary>Builds the float32 (maxPos, D) cos and sin caches of plain RoPE with base <paramref name="theta"/>
    /// and linear position interpolation <paramref name="factor"/>.</summary>
    public static (Tensor Cos, Tensor Sin) Caches(long headDim, long maxPos, double theta, double factor, Device device)
    {
        using var scope = NewDisposeScope();
        Tensor invFreq = pow(theta, arange(0, headDim, 2, ScalarType.Float32, device).div(headDim)).reciprocal();
        Tensor t = arange(maxPos, ScalarType.Float32, device).div(factor);
        Tensor freqs = outer(t, invFreq);
        Tensor emb = cat([freqs, freqs], -1);
        return (emb.cos().MoveToOuterDisposeScope(), emb.sin().MoveToOuterDisposeScope());
    }

    /// <summary>HF <c>rotate_half</c>: cat(-x2, x1) over the last dimension.</summary>
    public static Tensor RotateHalf(Tensor x)
    {
        long h = x.shape[^1] / 2;
        return cat([x.narrow(-1, h, h).neg(), x.narrow(-1, 0, h)], -1);
    }

    /// <summary>Rotates q and k, (B,H,N,D) each, at positions <paramref name="positionIds"/> (B,N) int64.</summary>
    public static (Tensor Q, Tensor K) Apply(Tensor q, Tensor k, Tensor positionIds, Tensor cosCache, Tensor sinCache)
    {
        Tensor cos = cosCache.index(positionIds).to(q.dtype).unsqueeze(1);
        Tensor sin = sinCache.index(positionIds).to(q.dtype).unsqueeze(1);
        return (q * cos + RotateHalf(q) * sin, k * cos + RotateHalf(k) * sin);
    }
}
