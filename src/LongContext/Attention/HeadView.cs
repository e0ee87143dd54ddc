using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>
/// q as (B, a, r, L, D) and k, v as stride-0 expansions (B, a, r, L, D) of (B, a, 1, L, D): a key/value heads, each
/// shared by r query heads (grouped-query attention without copying k and v); Keep is the (B, L) bool key mask or null.
/// Pieces are taken with split/chunk, whose backward assembles the gradient in one concatenation (no zero-filled
/// full-size gradient per piece as narrow's backward would allocate).
/// </summary>
internal sealed record HeadView(Tensor Q, Tensor K, Tensor V, Tensor? Keep)
{
    public static HeadView Of(Tensor q, Tensor k, Tensor v, Tensor? keep, AttentionShape s)
    {
        var size = new[] { s.Batch, s.KeyValueHeads, s.Repeats, s.SequenceLength, s.HeadDim };
        return new HeadView(q.view(size), k.unsqueeze(2).expand(size), v.unsqueeze(2).expand(size), keep);
    }

    /// <summary>The query heads [0, Hq/2) and [Hq/2, Hq) with their key/value heads.</summary>
    public (HeadView Unshifted, HeadView Shifted) Halves()
    {
        long a = Q.size(1), r = Q.size(2);
        Tensor q = Q, k = K, v = V;
        if (a % 2 != 0)
        {
            // An odd number of kv heads: one kv head straddles the halves, so list the query heads one by one
            // (q stays a view; k/v become a copy of the repeated heads, as HF's repeat_kv makes).
            long hq = a * r, b = Q.size(0), n = Q.size(3), d = Q.size(4);
            q = Q.reshape(b, hq, 1, n, d);
            k = K.reshape(b, hq, 1, n, d);
            v = V.reshape(b, hq, 1, n, d);
        }
        var (qs, ks, vs) = (q.chunk(2, 1), k.chunk(2, 1), v.chunk(2, 1));
        return (new HeadView(qs[0], ks[0], vs[0], Keep), new HeadView(qs[1], ks[1], vs[1], Keep));
    }

    /// <summary>Consecutive sequence pieces of the given lengths (summing to L).</summary>
    public HeadView[] SplitSequence(params long[] lengths)
    {
        var (qs, ks, vs) = (Q.split(lengths, 3), K.split(lengths, 3), V.split(lengths, 3));
        var keeps = Keep?.split(lengths, 1);
        return Enumerable.Range(0, lengths.Length).Select(i => new HeadView(qs[i], ks[i], vs[i], keeps?[i])).ToArray();
    }

    /// <summary>Pieces joined along the sequence, in the given order (a copy).</summary>
    public static HeadView Concat(params HeadView[] pieces)
    {
        Tensor Cat(Func<HeadView, Tensor> part, long dim) => cat(pieces.Select(part).ToArray(), dim);
        return new HeadView(Cat(p => p.Q, 3), Cat(p => p.K, 3), Cat(p => p.V, 3), pieces[0].Keep is null ? null : Cat(p => p.Keep!, 1));
    }
}
