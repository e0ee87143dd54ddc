using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>Causal attention inside equal consecutive groups of a <see cref="HeadView"/>, honouring its key mask.</summary>
internal static class GroupRunner
{
    /// <summary>
    /// Splits the view's L positions into <paramref name="count"/> groups of <paramref name="length"/> (count * length = L),
    /// each causal on its own, as a strided view of q, k, v batched through SDPA. Returns (B, a, r, L, D).
    /// </summary>
    public static Tensor Groups(HeadView x, long count, long length, double dropout)
    {
        Tensor G(Tensor t) => t.view(t.size(0), t.size(1), t.size(2), count, length, t.size(4));
        Tensor? allowed = x.Keep is null ? null : Allowed(x.Keep.view(x.Keep.size(0), 1, 1, count, 1, length), length);
        var o = BlockAttention.Attend(G(x.Q), G(x.K), G(x.V), allowed, dropout);
        return o.reshape(o.size(0), o.size(1), o.size(2), count * length, o.size(5));
    }

    /// <summary>
    /// Causal attention of N queries over M &gt; N keys (q (B, Hq, N, D), k and v (B, Hkv, M, D)), the queries being the
    /// last N positions: query i attends keys 0..M - N + i that are real (or itself). Returns (B, a, r, N, D).
    /// </summary>
    public static Tensor OffsetCausal(Tensor q, Tensor k, Tensor v, Tensor? keep, AttentionShape s, double dropout)
    {
        long b = s.Batch, a = s.KeyValueHeads, r = s.Repeats, n = s.SequenceLength, m = s.KeyLength, d = s.HeadDim;
        var kvSize = new[] { b, a, r, m, d };
        Tensor q5 = q.view(b, a, r, n, d), k5 = k.unsqueeze(2).expand(kvSize), v5 = v.unsqueeze(2).expand(kvSize);
        if (keep is null && n == 1)
            return BlockAttention.Attend(q5, k5, v5, null, dropout, causal: false); // one query sees every key
        // allowed[i, j] = j <= offset + i: tril with the diagonal moved right by the offset.
        Tensor allowed = ones(new[] { n, m }, ScalarType.Bool, q.device).tril(s.Offset);
        if (keep is not null)
        {
            Tensor self = eye(n, n, ScalarType.Bool, q.device);
            Tensor own = cat(new[] { zeros(new[] { n, s.Offset }, ScalarType.Bool, q.device), self }, 1);  // j == offset + i
            allowed = allowed.logical_and(keep.view(b, 1, 1, 1, m).logical_or(own)); // (B, 1, 1, N, M)
        }
        return BlockAttention.Attend(q5, k5, v5, allowed, dropout);
    }

    /// <summary>Causal and (real key or the query itself): the diagonal keeps padded query rows finite.</summary>
    private static Tensor Allowed(Tensor keepKeys, long length)
    {
        var causal = ones(new[] { length, length }, ScalarType.Bool, keepKeys.device).tril();
        var diagonal = eye(length, length, ScalarType.Bool, keepKeys.device);
        return causal.logical_and(keepKeys.logical_or(diagonal));
    }
}
