using static TorchSharp.torch;

namespace LongContext.GpuCheck.References;

/// <summary>Which tokens a query may attend, per head: full causal or LongLoRA's S2 groups.</summary>
internal enum MaskKind
{
    /// <summary>Causal over the whole sequence.</summary>
    Full,

    /// <summary>S2, the shifted half rolled by -G/2 (LongLoRA's eager path; its last group wraps around).</summary>
    Roll,

    /// <summary>S2, the shifted half in segments [0, G/2), [G/2 + iG, G/2 + (i+1)G), [N - G/2, N).</summary>
    NoWrap,
}

/// <summary>
/// Explicit masked attention (matmul, masked softmax, matmul) with masks built here from the definitions in the
/// fixture README, not from the library's layout helper. In float64 it is the reference; in a low-precision dtype on
/// the CPU it is the "eager" computation whose error scales the tolerance (as PyTorch's own SDPA tests do).
/// </summary>
internal static class AttentionReference
{
    /// <summary>(H, N, N) bool: true where query i of head h may attend key j.</summary>
    public static Tensor Allowed(int heads, int n, double ratio, MaskKind kind)
    {
        int g = (int)Math.Floor(n * ratio);
        var allowed = new bool[(long)heads * n * n];
        for (int h = 0; h < heads; h++)
        {
            bool shifted = kind != MaskKind.Full && h >= heads / 2;
            for (int i = 0; i < n; i++)
                for (int j = 0; j <= i; j++)
                {
                    bool ok = kind switch
                    {
                        MaskKind.Full => true,
                        _ when !shifted => i / g == j / g,
                        MaskKind.Roll => Rolled(i) / g == Rolled(j) / g && Rolled(j) <= Rolled(i),
                        _ => Segment(i) == Segment(j),
                    };
                    allowed[((long)h * n + i) * n + j] = ok;
                }
            // Roll: in rolled order a key may come after the query in original order (the wrap-around group).
            if (kind == MaskKind.Roll && shifted)
                for (int i = 0; i < n; i++)
                    for (int j = i + 1; j < n; j++)
                        allowed[((long)h * n + i) * n + j] = Rolled(i) / g == Rolled(j) / g && Rolled(j) <= Rolled(i);
        }
        return tensor(allowed, new long[] { heads, n, n });

        // roll(-G/2): the token at original position p sits at index (p - G/2) mod N.
        int Rolled(int p) => ((p - g / 2) % n + n) % n;
        int Segment(int p) => p < g / 2 ? 0 : (p - g / 2) / g + 1;
    }

    /// <summary>(H, N, M) bool for N queries that are the last N of M positions (keys from a KV cache): key j <= M - N + i.</summary>
    public static Tensor AllowedCached(int heads, int n, int m)
    {
        var allowed = new bool[(long)heads * n * m];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j <= m - n + i; j++)
                    allowed[((long)h * n + i) * m + j] = true;
        return tensor(allowed, new long[] { heads, n, m });
    }

    /// <summary>
    /// q (B, Hq, N, D), k/v (B, Hkv, N, D) in any dtype (computed in it), allowed (Hq, N, N); k/v heads repeated as HF's
    /// repeat_kv (query head h reads key head h / (Hq / Hkv)). Scale 1/sqrt(D).
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor allowed)
    {
        long rep = q.shape[1] / k.shape[1];
        Tensor kk = rep == 1 ? k : k.repeat_interleave(rep, 1), vv = rep == 1 ? v : v.repeat_interleave(rep, 1);
        Tensor scores = q.matmul(kk.transpose(2, 3)) * (1.0 / Math.Sqrt(q.shape[3]));
        return scores.masked_fill(allowed.to(q.device).unsqueeze(0).logical_not(), double.NegativeInfinity).softmax(-1).matmul(vv);
    }
}
