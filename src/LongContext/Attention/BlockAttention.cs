using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LongContext.Attention;

/// <summary>
/// Causal (or explicitly masked) attention over any number of batch dimensions, run through SDPA with as few
/// copies as the strides allow: batch dimensions that merge as views are merged until SDPA's 4-D form remains;
/// otherwise the first dimension is looped over. Key/value may be stride-0 expanded views (GQA).
/// </summary>
internal static class BlockAttention
{
    /// <summary>
    /// q: (b1, ..., bm, L, D); k, v: (b1, ..., bm, S, D) (k/v may be expanded views). allowed: null for no mask, else a
    /// bool tensor broadcastable to (b1, ..., bm, L, S), true = attend. With no mask, <paramref name="causal"/> selects
    /// SDPA's causal mask (L = S) or unmasked attention. Returns (b1, ..., bm, L, D).
    /// </summary>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? allowed, double dropout, bool causal = true)
    {
        int m = (int)q.dim() - 2;
        if (allowed is not null)
        {
            var full = q.shape.Take(m).Concat(new[] { q.size(m), k.size(m) }).ToArray();
            allowed = allowed.expand(full);
        }
        if (m <= 2)
        {
            Tensor qq = q, kk = k, vv = v;
            Tensor? mm = allowed;
            for (int i = m; i < 2; i++)
            {
                qq = qq.unsqueeze(0);
                kk = kk.unsqueeze(0);
                vv = vv.unsqueeze(0);
                mm = mm?.unsqueeze(0);
            }
            var o = F.scaled_dot_product_attention(qq, kk, vv, mm, dropout, mm is null && causal);
            return m == 2 ? o : o.view(q.shape);
        }
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
            {
                if (i == j || !Mergeable(q, i, j) || !Mergeable(k, i, j) || !Mergeable(v, i, j)) continue;
                var perm = new long[] { i, j }.Concat(Enumerable.Range(0, m + 2).Where(d => d != i && d != j).Select(d => (long)d)).ToArray();
                long[] Merged(Tensor t) => new[] { t.size(i) * t.size(j) }.Concat(perm.Skip(2).Select(d => t.size((int)d))).ToArray();
                var o = Attend(
                    q.permute(perm).view(Merged(q)),
                    k.permute(perm).view(Merged(k)),
                    v.permute(perm).view(Merged(v)),
                    allowed?.permute(perm).reshape(Merged(allowed)),
                    dropout, causal);
                var split = new[] { q.size(i), q.size(j) }.Concat(o.shape.Skip(1)).ToArray();
                var inverse = new long[perm.Length];
                for (int d = 0; d < perm.Length; d++) inverse[perm[d]] = d;
                return o.view(split).permute(inverse);
            }
        var parts = new Tensor[q.size(0)];
        for (long t = 0; t < parts.Length; t++)
            parts[t] = Attend(q[t], k[t], v[t], allowed?[t], dropout, causal);
        return stack(parts, 0);
    }

    /// <summary>True when dims i (outer) and j (inner) of x merge into one dimension without a copy.</summary>
    private static bool Mergeable(Tensor x, int i, int j)
        => x.size(i) == 1 || x.size(j) == 1 || x.stride(i) == x.size(j) * x.stride(j);
}
