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
        Tensor G(Tensor t) => t.view(t.shape[0], t.shape[1], t.shape[2], count, length, t.shape[4]);
        Tensor? allowed = x.Keep is null ? null : Allowed(x.Keep.view(x.Keep.shape[0], 1, 1, count, 1, length), length);
        var o = BlockAttention.Attend(G(x.Q), G(x.K), G(x.V), allowed, dropout);
        return o.reshape(o.shape[0], o.shape[1], o.shape[2], count * length, o.shape[5]);
    }

    /// <summary>Causal and (real key or the query itself): the diagonal keeps padded query rows finite.</summary>
    private static Tensor Allowed(Tensor keepKeys, long length)
    {
        var causal = ones(new[] { length, length }, ScalarType.Bool, keepKeys.device).tril();
        var diagonal = eye(length, length, ScalarType.Bool, keepKeys.device);
        return causal.logical_and(keepKeys.logical_or(diagonal));
    }
}
