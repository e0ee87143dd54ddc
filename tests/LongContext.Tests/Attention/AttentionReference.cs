using LongContext.Attention;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

/// <summary>
/// Explicit masked attention in float64 (matmul, masked softmax, matmul): the independent reference the fast
/// SDPA-based paths are checked against. The masks are built here from the definitions (LongLoRA's paper and code),
/// position by position, without the library's group arithmetic.
/// </summary>
internal static class AttentionReference
{
    /// <summary>
    /// q (B, Hq, N, D), k/v (B, Hkv, M, D) with M &gt;= N (queries are the last N positions), allowed (Hq or 1, N, M)
    /// bool (true = may attend), keep (B, M) bool or null. Padded keys are excluded (a padded query keeps itself);
    /// padded query rows are zero. Returns float64 (B, Hq, N, D).
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor allowed, Tensor? keep = null, double? scale = null)
    {
        using var scope = NewDisposeScope();
        var q64 = q.to(float64);
        long hq = q.shape[1], hkv = k.shape[1], n = q.shape[2], m = k.shape[2], d = q.shape[3];
        var k64 = k.to(float64).repeat_interleave(hq / hkv, 1);
        var v64 = v.to(float64).repeat_interleave(hq / hkv, 1);
        var mask = allowed.to(q.device).unsqueeze(0); // (1, H, N, M)
        if (keep is not null)
        {
            var self = zeros(new[] { n, m }, ScalarType.Bool);
            for (long i = 0; i < n; i++) self[i, m - n + i] = tensor(true);
            mask = mask.logical_and(keep.to(ScalarType.Bool).view(keep.shape[0], 1, 1, m).logical_or(self));
        }
        var w = q64.matmul(k64.transpose(2, 3)) * (scale ?? 1.0 / Math.Sqrt(d));
        var o = w.masked_fill(mask.logical_not(), double.NegativeInfinity).softmax(-1).matmul(v64);
        if (keep is not null) o = o * keep.to(float64).narrow(1, m - n, n).view(keep.shape[0], 1, n, 1);
        return o.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// S2-Attn's mask from its definition: with G = floor(N * ratio), heads [0, H/2) attend causally within
    /// [iG, (i+1)G). Heads [H/2, H) see the sequence rolled by -G/2 (position p at p' = (p - G/2) mod N) and attend
    /// causally within groups of G in that order, except that <see cref="S2WrapPolicy.NoWrap"/> cuts the rolled-around
    /// group in two (its tail [N - G/2, N) and head [0, G/2) do not see each other). One group (G = N): full causal
    /// attention for every head.
    /// </summary>
    public static Tensor S2Mask(int heads, int n, double ratio, S2WrapPolicy policy)
    {
        int g = (int)Math.Floor(n * ratio), half = g / 2;
        var mask = new bool[heads, n, n];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    bool shifted = h >= heads / 2 && g < n;
                    if (!shifted)
                    {
                        mask[h, i, j] = j <= i && i / g == j / g;
                        continue;
                    }
                    int ri = ((i - half) % n + n) % n, rj = ((j - half) % n + n) % n;
                    bool sameGroup = ri / g == rj / g && rj <= ri;
                    bool wrapsAround = (i < half) != (j < half) && ri / g == n / g - 1;
                    mask[h, i, j] = sameGroup && !(policy == S2WrapPolicy.NoWrap && wrapsAround);
                }
        return tensor(mask.Cast<bool>().ToArray(), new long[] { heads, n, n });
    }

    /// <summary>Causal mask of N queries over M keys, queries at the last N positions: key j visible to query i when j &lt;= M - N + i.</summary>
    public static Tensor CausalMask(int n, int m)
    {
        var mask = new bool[n, m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
                mask[i, j] = j <= m - n + i;
        return tensor(mask.Cast<bool>().ToArray(), new long[] { 1, n, m });
    }

    /// <summary>Reference S2-Attn through <see cref="S2Mask"/>.</summary>
    public static Tensor ShiftedSparse(Tensor q, Tensor k, Tensor v, double ratio, S2WrapPolicy policy, Tensor? keep = null, double? scale = null)
    {
        using var allowed = S2Mask((int)q.shape[1], (int)q.shape[2], ratio, policy);
        return Attention(q, k, v, allowed, keep, scale);
    }

    /// <summary>Reference full causal attention (keys may outnumber queries: a cache).</summary>
    public static Tensor Full(Tensor q, Tensor k, Tensor v, Tensor? keep = null, double? scale = null)
    {
        using var allowed = CausalMask((int)q.shape[2], (int)k.shape[2]);
        return Attention(q, k, v, allowed, keep, scale);
    }

    /// <summary>Seeded (B, H, N, D) normal tensors in float64.</summary>
    public static (Tensor Q, Tensor K, Tensor V) Random(long b, long hq, long hkv, long n, long d, int seed = 1)
    {
        var gen = new Generator((ulong)seed);
        return (randn(new[] { b, hq, n, d }, float64, generator: gen),
                randn(new[] { b, hkv, n, d }, float64, generator: gen),
                randn(new[] { b, hkv, n, d }, float64, generator: gen));
    }
}
