using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>
/// Attention as pure functions of (q, k, v): full causal attention and LongLoRA's shifted sparse attention (S2-Attn),
/// both through <c>scaled_dot_product_attention</c> so CUDA uses its fused kernels. Layout at the boundary:
/// q (B, Hq, N, D), k and v (B, Hkv, M, D) with Hq a multiple of Hkv (grouped-query attention), output (B, Hq, N, D)
/// in q's dtype (float32, float64, bfloat16 or float16) on q's device. Without a cache M = N. Full causal attention
/// also takes more keys than queries (M &gt; N, keys read from a KV cache): the queries are then the last N of the M
/// positions, so query i attends keys 0..M - N + i (the causal offset). S2-Attn is a training pattern and needs M = N.
/// </summary>
/// <remarks>
/// Key padding mask (HF convention): (B, M) bool or integer, one entry per key, 1/true = a real token, 0 = padding.
/// Padded keys are never attended; the output at padded query positions (the mask's last N entries) is zero (finite,
/// and no gradient flows from it). Grouped-query k/v are expanded as stride-0 views, not copied, wherever the strides
/// let SDPA take them as they are.
/// </remarks>
public static class AttentionFunctions
{
    /// <summary>Attention in the mode the options select (<see cref="AttentionOptions.Mode"/>).</summary>
    /// <param name="q">Queries (B, Hq, N, D).</param>
    /// <param name="k">Keys (B, Hkv, M, D); M &gt; N only in <see cref="AttentionMode.Full"/> (a cache).</param>
    /// <param name="v">Values (B, Hkv, M, D).</param>
    /// <param name="options">Mode, S2 group ratio and wrap policy, dropout, scale.</param>
    /// <param name="keyPaddingMask">Optional (B, M) bool/integer mask, 1/true = attend, 0 = padding.</param>
    /// <param name="training">Dropout applies only when true.</param>
    /// <returns>(B, Hq, N, D).</returns>
    public static Tensor Compute(Tensor q, Tensor k, Tensor v, AttentionOptions options, Tensor? keyPaddingMask = null, bool training = false)
    {
        Guard.NotNull(options);
        return options.Mode == AttentionMode.ShiftedSparse
            ? ShiftedSparse(q, k, v, options.GroupSizeRatio, options.WrapPolicy, keyPaddingMask, options.Dropout, training, options.Scale)
            : FullCausal(q, k, v, keyPaddingMask, options.Dropout, training, options.Scale);
    }

    /// <summary>
    /// Causal attention: query i sees keys 0..M - N + i (keys 0..i without a cache, M = N). With M &gt; N the keys
    /// before the queries (a KV cache's content) are visible to every query; no (M, M) score matrix is formed, only
    /// (N, M) (and none at all for a single query without padding, which attends every key).
    /// </summary>
    /// <param name="q">Queries (B, Hq, N, D).</param>
    /// <param name="k">Keys (B, Hkv, M, D), M &gt;= N; the last N are the queries' own positions.</param>
    /// <param name="v">Values (B, Hkv, M, D).</param>
    /// <param name="keyPaddingMask">Optional (B, M) bool/integer mask, 1/true = attend, 0 = padding.</param>
    /// <param name="dropout">Dropout probability on the attention probabilities, in [0, 1); used only in training.</param>
    /// <param name="training">Dropout applies only when true.</param>
    /// <param name="scale">Softmax scale; null means 1/sqrt(D).</param>
    /// <returns>(B, Hq, N, D).</returns>
    public static Tensor FullCausal(Tensor q, Tensor k, Tensor v, Tensor? keyPaddingMask = null, double dropout = 0, bool training = false, double? scale = null)
    {
        var shape = AttentionInputs.Validate(q, k, v, keyPaddingMask, dropout, scale);
        using var scope = NewDisposeScope();
        var keep = AttentionInputs.KeepMask(keyPaddingMask);
        Tensor scaled = AttentionInputs.ScaleQuery(q, scale, shape.HeadDim);
        var o = shape.Offset == 0
            ? GroupRunner.Groups(HeadView.Of(scaled, k, v, keep, shape), 1, shape.SequenceLength, training ? dropout : 0)
            : GroupRunner.OffsetCausal(scaled, k, v, keep, shape, training ? dropout : 0);
        return Finish(o, keep, shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// LongLoRA's shifted sparse attention. With G = floor(N * ratio): heads [0, Hq/2) attend causally inside groups
    /// [iG, (i+1)G); heads [Hq/2, Hq) are shifted by G/2 and treat the sequence ends as the policy says (see
    /// <see cref="S2WrapPolicy"/> and <see cref="S2GroupLayout.Groups"/>). With a single group (G = N) this is full
    /// causal attention for every head. The no-wrap middle groups are strided views of q, k, v (no copies); groups run
    /// batched through SDPA's batch dimensions.
    /// </summary>
    /// <param name="q">Queries (B, Hq, N, D), Hq even.</param>
    /// <param name="k">Keys (B, Hkv, N, D).</param>
    /// <param name="v">Values (B, Hkv, N, D).</param>
    /// <param name="groupSizeRatio">Group size as a fraction of N, in (0, 1]; G must be even and divide N.</param>
    /// <param name="policy">Wrap policy of the shifted heads.</param>
    /// <param name="keyPaddingMask">Optional (B, N) bool/integer mask, 1/true = attend, 0 = padding.</param>
    /// <param name="dropout">Dropout probability on the attention probabilities, in [0, 1); used only in training.</param>
    /// <param name="training">Dropout applies only when true.</param>
    /// <param name="scale">Softmax scale; null means 1/sqrt(D).</param>
    /// <returns>(B, Hq, N, D).</returns>
    /// <exception cref="ArgumentException">k holds more positions than q (S2 has no cached keys: inference uses full attention).</exception>
    public static Tensor ShiftedSparse(Tensor q, Tensor k, Tensor v, double groupSizeRatio, S2WrapPolicy policy, Tensor? keyPaddingMask = null,
        double dropout = 0, bool training = false, double? scale = null)
    {
        var shape = AttentionInputs.Validate(q, k, v, keyPaddingMask, dropout, scale);
        if (shape.Offset != 0)
            throw new ArgumentException(
                $"S2 attention needs as many keys as queries; k has {shape.KeyLength} positions, q {shape.SequenceLength}. Keys from a cache (inference) take full attention.", nameof(k));
        if (!Enum.IsDefined(policy))
            throw new ArgumentOutOfRangeException(nameof(policy), policy, $"policy must be NoWrap or Roll; got {(int)policy}.");
        if (shape.QueryHeads % 2 != 0)
            throw new ArgumentException($"S2 attention shifts half of the heads, so the head count must be even; q has {shape.QueryHeads} heads.", nameof(q));
        int g = S2GroupLayout.GroupSize(shape.SequenceLength, groupSizeRatio);
        int n = (int)shape.SequenceLength;
        if (g == n) return FullCausal(q, k, v, keyPaddingMask, dropout, training, scale);

        using var scope = NewDisposeScope();
        var keep = AttentionInputs.KeepMask(keyPaddingMask);
        var (unshifted, shiftedHeads) = HeadView.Of(AttentionInputs.ScaleQuery(q, scale, shape.HeadDim), k, v, keep, shape).Halves();
        double p = training ? dropout : 0;
        int half = g / 2, count = n / g;

        var plain = GroupRunner.Groups(unshifted, count, g, p);
        var pieces = shiftedHeads.SplitSequence(half, n - g, half); // [0, G/2), [G/2, N - G/2), [N - G/2, N): views
        var middle = GroupRunner.Groups(pieces[1], count - 1, g, p);
        Tensor shifted;
        if (policy == S2WrapPolicy.NoWrap)
        {
            shifted = cat(new[] { GroupRunner.Groups(pieces[0], 1, half, p), middle, GroupRunner.Groups(pieces[2], 1, half, p) }, 3);
        }
        else
        {
            // Roll: the last rolled group is [N - G/2, N) then [0, G/2), causal in that order (G tokens copied).
            var last = GroupRunner.Groups(HeadView.Concat(pieces[2], pieces[0]), 1, g, p).split(new long[] { half, half }, 3);
            shifted = cat(new[] { last[1], middle, last[0] }, 3);
        }
        var o = cat(new[] { plain, shifted }, 1);
        return Finish(o, keep, shape).MoveToOuterDisposeScope();
    }

    /// <summary>(B, a, r, N, D) head-grouped output to (B, Hq, N, D), zero at padded query positions.</summary>
    private static Tensor Finish(Tensor grouped, Tensor? keep, AttentionShape shape)
    {
        var o = grouped.reshape(shape.Batch, shape.QueryHeads, shape.SequenceLength, shape.HeadDim);
        if (keep is null) return o;
        var queries = shape.Offset == 0 ? keep : keep.narrow(1, shape.Offset, shape.SequenceLength);
        return o * queries.reshape(shape.Batch, 1, shape.SequenceLength, 1).to(o.dtype);
    }
}
