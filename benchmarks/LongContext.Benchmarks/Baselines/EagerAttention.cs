using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace LongContext.Benchmarks.Baselines;

/// <summary>
/// The eager recipes the anchors measure, written on SDPA in (batch, heads, seq, head_dim) layout: full causal attention,
/// the LongLoRA shifted-sparse roll recipe, and the no-wrap variant built from views. These are baselines; the library's
/// implementations live in LongContext.Attention.
/// </summary>
public static class EagerAttention
{
    /// <summary>HF <c>repeat_kv</c>: (B, KV, N, D) to (B, KV*rep, N, D) via expand + reshape; identity when rep is 1.</summary>
    public static Tensor RepeatKv(Tensor x, long rep)
    {
        if (rep == 1) return x;
        long b = x.shape[0], kv = x.shape[1], n = x.shape[2], d = x.shape[3];
        return x.unsqueeze(2).expand(b, kv, rep, n, d).reshape(b, kv * rep, n, d);
    }

    /// <summary>Full causal attention: SDPA with is_causal, k/v repeated to the query heads for GQA. q (B,H,N,D), k/v (B,KV,N,D).</summary>
    public static Tensor FullCausal(Tensor q, Tensor k, Tensor v)
    {
        long rep = q.shape[1] / k.shape[1];
        return scaled_dot_product_attention(q, RepeatKv(k, rep), RepeatKv(v, rep), is_casual: true);
    }

    /// <summary>
    /// LongLoRA S2-Attn, the eager roll recipe: the second half of the heads is rolled by -g/2 along the sequence, the
    /// sequence is cut into groups of g = N * ratio that become batch entries (a view), causal SDPA runs per group, and
    /// the second half is rolled back by +g/2. The wrap-around group mixes the last g/2 tokens with the first g/2, as in
    /// the original recipe. q (B,H,N,D), k/v (B,KV,N,D).
    /// </summary>
    public static Tensor S2Roll(Tensor q, Tensor k, Tensor v, int groupDivisor)
    {
        long rep = q.shape[1] / k.shape[1];
        k = RepeatKv(k, rep);
        v = RepeatKv(v, rep);
        long b = q.shape[0], h = q.shape[1], n = q.shape[2], d = q.shape[3];
        long g = n / groupDivisor, groups = n / g;
        Tensor Shift(Tensor x) => cat([x.narrow(1, 0, h / 2), x.narrow(1, h / 2, h - h / 2).roll(-g / 2, 2)], 1).view(b, h * groups, g, d);
        Tensor o = scaled_dot_product_attention(Shift(q), Shift(k), Shift(v), is_casual: true).view(b, h, n, d);
        return cat([o.narrow(1, 0, h / 2), o.narrow(1, h / 2, h - h / 2).roll(g / 2, 2)], 1);
    }

    /// <summary>
    /// S2-Attn without wrap-around, inputs taken as views: the first half of the heads attends in groups [0,g), [g,2g)...;
    /// the second half in [0,g/2), [g/2,3g/2), ..., [N-g/2,N). The two half-size edge groups run as one small SDPA call.
    /// q (B,H,N,D), k/v (B,KV,N,D). Batch 1 keeps the shifted groups copy-free; larger batches copy them once.
    /// </summary>
    public static Tensor S2NoWrap(Tensor q, Tensor k, Tensor v, int groupDivisor)
    {
        long rep = q.shape[1] / k.shape[1];
        k = RepeatKv(k, rep);
        v = RepeatKv(v, rep);
        long b = q.shape[0], h = q.shape[1], n = q.shape[2], d = q.shape[3];
        long h1 = h / 2, h2 = h - h1, g = n / groupDivisor, groups = n / g, half = g / 2;

        // Unshifted heads: contiguous view (B, h1*G, g, D).
        Tensor Plain(Tensor x) => x.narrow(1, 0, h1).reshape(b, h1 * groups, g, d);
        Tensor o1 = scaled_dot_product_attention(Plain(q), Plain(k), Plain(v), is_casual: true).view(b, h1, n, d);

        // Shifted heads, the G-1 full groups between the edges: a strided view (G-1, h2, g, D) when B == 1.
        Tensor Middle(Tensor x)
        {
            Tensor m = x.narrow(1, h1, h2).narrow(2, half, n - g).view(b, h2, groups - 1, g, d);
            return b == 1 ? m.squeeze(0).transpose(0, 1) : m.transpose(1, 2).reshape(b * (groups - 1), h2, g, d);
        }
        Tensor om = scaled_dot_product_attention(Middle(q), Middle(k), Middle(v), is_casual: true);
        om = (b == 1 ? om.transpose(0, 1).unsqueeze(0) : om.view(b, groups - 1, h2, g, d).transpose(1, 2)).reshape(b, h2, n - g, d);

        // The two edge groups of g/2 tokens, as one call over 2*h2 heads.
        Tensor Edges(Tensor x) => cat([x.narrow(1, h1, h2).narrow(2, 0, half), x.narrow(1, h1, h2).narrow(2, n - half, half)], 1);
        Tensor oe = scaled_dot_product_attention(Edges(q), Edges(k), Edges(v), is_casual: true);
        Tensor o2 = cat([oe.narrow(1, 0, h2), om, oe.narrow(1, h2, h2)], 2);
        return cat([o1, o2], 1);
    }
}
