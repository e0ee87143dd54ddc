using LongContext.Attention;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

/// <summary>
/// Explicit masked attention in float64 (matmul, masked softmax, matmul): the independent reference the fast
/// SDPA-based paths are checked against.
/// </summary>
internal static class AttentionReference
{
    /// <summary>
    /// q (B, Hq, N, D), k/v (B, Hkv, N, D), allowed (Hq or 1, N, N) bool (true = may attend), keep (B, N) bool or null.
    /// Padded keys are excluded; padded query rows are zero. Returns float64 (B, Hq, N, D).
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor allowed, Tensor? keep = null, double? scale = null)
    {
        using var scope = NewDisposeScope();
        var q64 = q.to(float64);
        long hq = q.shape[1], hkv = k.shape[1], n = q.shape[2], d = q.shape[3];
        var k64 = k.to(float64).repeat_interleave(hq / hkv, 1);
        var v64 = v.to(float64).repeat_interleave(hq / hkv, 1);
        var mask = allowed.to(q.device).unsqueeze(0); // (1, H, N, N)
        if (keep is not null)
        {
            var eye_ = eye(n, n, ScalarType.Bool, q.device);
            mask = mask.logical_and(keep.to(ScalarType.Bool).view(keep.shape[0], 1, 1, n).logical_or(eye_));
        }
        var w = q64.matmul(k64.transpose(2, 3)) * (scale ?? 1.0 / Math.Sqrt(d));
        var o = w.masked_fill(mask.logical_not(), double.NegativeInfinity).softmax(-1).matmul(v64);
        if (keep is not null) o = o * keep.to(float64).view(keep.shape[0], 1, n, 1);
        return o.MoveToOuterDisposeScope();
    }

    /// <summary>Reference S2-Attn through <see cref="S2GroupLayout.AllowedMask"/>.</summary>
    public static Tensor ShiftedSparse(Tensor q, Tensor k, Tensor v, double ratio, S2WrapPolicy policy, Tensor? keep = null, double? scale = null)
    {
        using var allowed = S2GroupLayout.AllowedMask((int)q.shape[1], (int)q.shape[2], ratio, policy);
        return Attention(q, k, v, allowed, keep, scale);
    }

    /// <summary>Reference full causal attention.</summary>
    public static Tensor Full(Tensor q, Tensor k, Tensor v, Tensor? keep = null, double? scale = null)
    {
        using var allowed = S2GroupLayout.CausalMask((int)q.shape[2]).unsqueeze(0);
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
