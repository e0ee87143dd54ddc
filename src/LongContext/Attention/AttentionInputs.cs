using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>
/// Validated sizes of one attention call: N queries over M &gt;= N keys, the queries being the last N of the M
/// positions (M = N without a cache).
/// </summary>
internal readonly record struct AttentionShape(long Batch, long QueryHeads, long KeyValueHeads, long SequenceLength, long HeadDim, long KeyLength)
{
    /// <summary>Query heads per key/value head.</summary>
    public long Repeats => QueryHeads / KeyValueHeads;

    /// <summary>Key position of query 0 (M - N): query i attends keys 0..Offset + i.</summary>
    public long Offset => KeyLength - SequenceLength;
}

/// <summary>Checks of q, k, v and the key padding mask with messages naming the argument and the bad value.</summary>
internal static class AttentionInputs
{
    private static readonly ScalarType[] FloatTypes = { ScalarType.Float32, ScalarType.Float64, ScalarType.BFloat16, ScalarType.Float16 };

    public static AttentionShape Validate(Tensor q, Tensor k, Tensor v, Tensor? keyPaddingMask, double dropout, double? scale)
    {
        Guard.NotNull(q);
        Guard.NotNull(k);
        Guard.NotNull(v);
        FourD(q, nameof(q));
        FourD(k, nameof(k));
        FourD(v, nameof(v));
        if (!FloatTypes.Contains(q.dtype))
            throw new ArgumentException($"q must be float32, float64, bfloat16 or float16; got {q.dtype}.", nameof(q));
        if (k.dtype != q.dtype) throw new ArgumentException($"k has dtype {k.dtype} but q has {q.dtype}; they must match.", nameof(k));
        if (v.dtype != q.dtype) throw new ArgumentException($"v has dtype {v.dtype} but q has {q.dtype}; they must match.", nameof(v));
        if (!SameDevice(k, q)) throw new ArgumentException($"k is on {k.device} but q is on {q.device}; they must be on one device.", nameof(k));
        if (!SameDevice(v, q)) throw new ArgumentException($"v is on {v.device} but q is on {q.device}; they must be on one device.", nameof(v));
        if (!k.shape.SequenceEqual(v.shape))
            throw new ArgumentException($"v has shape {Show(v.shape)} but k has {Show(k.shape)}; they must match.", nameof(v));
        long b = q.size(0), hq = q.size(1), n = q.size(2), d = q.size(3), hkv = k.size(1), m = k.size(2);
        if (k.size(0) != b || m < n || k.size(3) != d)
            throw new ArgumentException(
                $"k has shape {Show(k.shape)} but q has {Show(q.shape)}: batch and head dim must match and keys must be at least as many as queries ((B, Hkv, M, D) with M >= N against (B, Hq, N, D)).", nameof(k));
        if (b == 0 || hq == 0 || n == 0 || d == 0 || hkv == 0)
            throw new ArgumentException($"q {Show(q.shape)} and k {Show(k.shape)} must have no empty dimension.", nameof(q));
        if (hq % hkv != 0)
            throw new ArgumentException($"q has {hq} heads, which is not a multiple of the {hkv} key/value heads of k.", nameof(k));
        Guard.DropoutProbability(dropout);
        if (scale is { } s && !(s > 0 && double.IsFinite(s)))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, $"scale must be null or a positive finite number; got {s}.");
        if (keyPaddingMask is not null)
        {
            if (keyPaddingMask.dim() != 2 || keyPaddingMask.size(0) != b || keyPaddingMask.size(1) != m)
                throw new ArgumentException($"keyPaddingMask must have shape (B, M) = ({b}, {m}), one entry per key; got {Show(keyPaddingMask.shape)}.", nameof(keyPaddingMask));
            if (keyPaddingMask.dtype != ScalarType.Bool && !is_integral(keyPaddingMask.dtype))
                throw new ArgumentException($"keyPaddingMask must be bool or an integer type (1/true = attend, 0 = padding); got {keyPaddingMask.dtype}.", nameof(keyPaddingMask));
            if (!SameDevice(keyPaddingMask, q))
                throw new ArgumentException($"keyPaddingMask is on {keyPaddingMask.device} but q is on {q.device}; they must be on one device.", nameof(keyPaddingMask));
        }
        return new AttentionShape(b, hq, hkv, n, d, m);
    }

    /// <summary>The mask as bool (B, M), or null when it keeps every key (then the fused causal path runs).</summary>
    public static Tensor? KeepMask(Tensor? keyPaddingMask)
    {
        if (keyPaddingMask is null) return null;
        var keep = keyPaddingMask.dtype == ScalarType.Bool ? keyPaddingMask.alias() : keyPaddingMask.ne(0);
        using var all = keep.all();
        if (all.item<bool>())
        {
            keep.Dispose();
            return null;
        }
        return keep;
    }

    /// <summary>q multiplied so that SDPA's built-in 1/sqrt(D) yields the requested scale (unchanged when null or equal).</summary>
    public static Tensor ScaleQuery(Tensor q, double? scale, long headDim)
    {
        if (scale is not { } s) return q;
        double factor = s * Math.Sqrt(headDim);
        return factor == 1.0 ? q : q * factor;
    }

    private static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    internal static string Show(long[] shape) => "(" + string.Join(", ", shape) + ")";

    private static void FourD(Tensor t, string name)
    {
        if (t.dim() != 4)
            throw new ArgumentException($"{name} must be 4-D (batch, heads, sequence, head_dim); got shape {Show(t.shape)}.", name);
    }
}
