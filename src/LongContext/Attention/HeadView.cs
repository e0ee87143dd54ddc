using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>
/// q as (B, a, r, N, D) and k, v as stride-0 expansions (B, a, r, N, D) of (B, a, 1, N, D): a key/value heads, each
/// shared by r query heads (grouped-query attention without copying k and v).
/// </summary>
internal sealed record HeadView(Tensor Q, Tensor K, Tensor V)
{
    public static HeadView Of(Tensor q, Tensor k, Tensor v, AttentionShape s)
    {
        long r = s.Repeats;
        var size = new[] { s.Batch, s.KeyValueHeads, r, s.SequenceLength, s.HeadDim };
        return new HeadView(q.view(size), k.unsqueeze(2).expand(size), v.unsqueeze(2).expand(size));
    }

    /// <summary>Heads [half * Hq/2, (half + 1) * Hq/2) of the query heads with their key/value heads.</summary>
    public HeadView Half(int half)
    {
        long a = Q.shape[1], r = Q.shape[2];
        if (a % 2 == 0) return new HeadView(Q.narrow(1, half * a / 2, a / 2), K.narrow(1, half * a / 2, a / 2), V.narrow(1, half * a / 2, a / 2));
        // An odd number of kv heads: a kv head straddles the two halves, so list the query heads one by one
        // (q stays a view; k/v for this half become a copy of the repeated heads, as in HF's repeat_kv).
        long hq = a * r, b = Q.shape[0], n = Q.shape[3], d = Q.shape[4];
        Tensor Flat(Tensor t) => t.reshape(b, hq, 1, n, d).narrow(1, half * hq / 2, hq / 2);
        return new HeadView(Flat(Q), Flat(K), Flat(V));
    }
}
