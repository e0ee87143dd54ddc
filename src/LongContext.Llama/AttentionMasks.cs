using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>HF-style attention masks (B, N), 1 = token, 0 = padding: checks and the derived tensors the model uses.</summary>
public static class AttentionMasks
{
    /// <summary>
    /// Checks an attention mask against the token ids it belongs to: (B, N) like <paramref name="inputIds"/>, bool or
    /// an integer type, values 0 and 1 only, on the ids' device.
    /// </summary>
    /// <param name="attentionMask">The mask.</param>
    /// <param name="inputIds">Token ids (B, N).</param>
    /// <param name="name">Parameter name used in messages.</param>
    /// <exception cref="ArgumentException">Shape, dtype, device or values are wrong (named in the message).</exception>
    public static void Check(Tensor attentionMask, Tensor inputIds, string name = "attentionMask")
    {
        ArgumentNullException.ThrowIfNull(attentionMask, name);
        ArgumentNullException.ThrowIfNull(inputIds);
        if (attentionMask.dim() != 2 || !attentionMask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException(
                $"{name} must have the shape of the input ids ({string.Join(", ", inputIds.shape)}) = (B, N); got ({string.Join(", ", attentionMask.shape)}).", name);
        if (attentionMask.dtype != ScalarType.Bool && !is_integral(attentionMask.dtype))
            throw new ArgumentException($"{name} must be bool or an integer type (1 = token, 0 = padding); got {attentionMask.dtype}.", name);
        if (attentionMask.device_type != inputIds.device_type || attentionMask.device_index != inputIds.device_index)
            throw new ArgumentException($"{name} is on {attentionMask.device} but the input ids are on {inputIds.device}.", name);
        if (attentionMask.dtype != ScalarType.Bool)
        {
            using var bad = attentionMask.ne(0).logical_and(attentionMask.ne(1));
            using var any = bad.any();
            if (any.item<bool>())
            {
                using var where = bad.nonzero();
                long row = where[0, 0].item<long>(), col = where[0, 1].item<long>();
                using var value = attentionMask[row, col];
                throw new ArgumentException(
                    $"{name} must hold only 0 (padding) and 1 (token); [{row}, {col}] is {value.to(ScalarType.Int64).item<long>()}.", name);
            }
        }
    }

    /// <summary>The mask as bool (B, N), true = token; null when the mask is null or keeps every position.</summary>
    /// <param name="attentionMask">An HF mask (B, N), or null.</param>
    public static Tensor? KeyMask(Tensor? attentionMask)
    {
        if (attentionMask is null) return null;
        var keep = attentionMask.dtype == ScalarType.Bool ? attentionMask.alias() : attentionMask.ne(0);
        using var all = keep.all();
        if (!all.item<bool>()) return keep;
        keep.Dispose();
        return null;
    }

    /// <summary>
    /// Position ids for a padded batch as HF's <c>generate</c> derives them: <c>cumsum(mask) - 1</c> along each row,
    /// 0 at padded positions, so a left-padded row's real tokens sit at 0, 1, 2, ... (int64 (B, N)).
    /// </summary>
    /// <param name="attentionMask">An HF mask (B, N), 1 = token, 0 = padding.</param>
    public static Tensor PositionIds(Tensor attentionMask)
    {
        ArgumentNullException.ThrowIfNull(attentionMask);
        using var scope = NewDisposeScope();
        Tensor m = attentionMask.to(ScalarType.Int64);
        return (m.cumsum(1) - 1).clamp_min(0).mul(m).MoveToOuterDisposeScope();
    }
}
