using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>Runs causal attention inside groups of positions of a <see cref="HeadView"/>, honouring a key padding mask.</summary>
internal sealed class GroupRunner
{
    private readonly HeadView _heads;
    private readonly Tensor? _keep;
    private readonly double _dropout;

    public GroupRunner(HeadView heads, Tensor? keep, double dropout)
    {
        _heads = heads;
        _keep = keep;
        _dropout = dropout;
    }

    /// <summary>
    /// Groups [start + i * length, start + (i + 1) * length), i &lt; count, each causal on its own: strided views
    /// of q, k, v batched through SDPA. Returns (B, a, r, count * length, D).
    /// </summary>
    public Tensor Groups(int start, int count, int length)
    {
        long span = (long)count * length;
        Tensor G(Tensor t) => t.narrow(3, start, span).view(t.shape[0], t.shape[1], t.shape[2], count, length, t.shape[4]);
        Tensor? allowed = _keep is null ? null : Allowed(_keep.narrow(1, start, span).view(_keep.shape[0], 1, 1, count, 1, length), length);
        var o = BlockAttention.Attend(G(_heads.Q), G(_heads.K), G(_heads.V), allowed, _dropout);
        return o.reshape(o.shape[0], o.shape[1], o.shape[2], span, o.shape[5]);
    }

    /// <summary>One group made of several segments, causal in the given order (copies the segments). Returns (B, a, r, L, D).</summary>
    public Tensor Joined(params SequenceSegment[] pieces)
    {
        Tensor J(Tensor t) => cat(pieces.Select(s => t.narrow(3, s.Start, s.Length)).ToArray(), 3);
        Tensor? allowed = null;
        if (_keep is not null)
        {
            var keys = cat(pieces.Select(s => _keep.narrow(1, s.Start, s.Length)).ToArray(), 1);
            allowed = Allowed(keys.view(keys.shape[0], 1, 1, 1, keys.shape[1]), keys.shape[1]);
        }
        return BlockAttention.Attend(J(_heads.Q), J(_heads.K), J(_heads.V), allowed, _dropout);
    }

    /// <summary>Causal and (real key or the query itself): the diagonal keeps padded query rows finite.</summary>
    private static Tensor Allowed(Tensor keepKeys, long length)
    {
        var causal = ones(new[] { length, length }, ScalarType.Bool, keepKeys.device).tril();
        var diagonal = eye(length, length, ScalarType.Bool, keepKeys.device);
        return causal.logical_and(keepKeys.logical_or(diagonal));
    }
}
