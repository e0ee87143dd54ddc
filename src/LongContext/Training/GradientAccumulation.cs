using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// Gradient accumulation normalised by the labelled targets of the whole step: micro-batch i contributes
/// <c>S_i / T</c>, where <c>S_i</c> is its summed token loss and <c>T</c> the number of labelled next-token targets over
/// all k micro-batches, so the accumulated gradient is that of the mean loss over one batch of all k micro-batches'
/// rows, also when they hold different numbers of labelled tokens.
/// </summary>
/// <remarks>
/// This is HF Trainer's behaviour since transformers 4.46 (<c>num_items_in_batch</c>: the loss is summed per
/// micro-batch and divided by the item count of the accumulated batch). Older versions, the ones LongLoRA ran,
/// divided each micro-batch's mean by k, which equals this only when every micro-batch has the same number of
/// labelled targets (e.g. fully packed rows). The counts are taken from the labels before any forward runs.
/// </remarks>
public static class GradientAccumulation
{
    /// <summary>Labelled next-token targets in <paramref name="labels"/> (B, N): entries of <c>labels[:, 1:]</c> that are not -100.</summary>
    /// <param name="labels">Labels aligned with the inputs, as the causal-LM losses take them.</param>
    /// <exception cref="ArgumentException">The labels are not (B, N) with N at least 2.</exception>
    public static long CountTargets(Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.dim() != 2 || labels.size(1) < 2)
            throw new ArgumentException($"{nameof(labels)} must be (B, N) with N >= 2; got shape [{string.Join(", ", labels.shape)}].", nameof(labels));
        using var scope = NewDisposeScope();
        return labels.narrow(1, 1, labels.size(1) - 1).ne(ChunkedCausalLmLoss.IgnoreIndex).count_nonzero().item<long>();
    }

    /// <summary>
    /// Runs forward and backward for each micro-batch, each in its own dispose scope, with the loss
    /// <c>summedLoss(batch) / T</c>; gradients accumulate in the parameters' <c>.grad</c>. Call the optimizer
    /// (and clipping) afterwards.
    /// </summary>
    /// <typeparam name="TBatch">The caller's micro-batch type.</typeparam>
    /// <param name="microBatches">The k micro-batches of one optimizer step, at least one.</param>
    /// <param name="labelsOf">The labels (B, N) of a micro-batch (counted before any forward).</param>
    /// <param name="summedLoss">Runs the model on a micro-batch and returns the scalar SUM of its token losses
    /// (e.g. <see cref="ChunkedCausalLmLoss.ComputeSum"/>, or <c>cross_entropy(..., reduction: Sum)</c>).</param>
    /// <returns>The step's mean loss and target count.</returns>
    /// <exception cref="ArgumentException">No micro-batches, or not one labelled target among them.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="summedLoss"/> returned a non-scalar.</exception>
    public static AccumulatedLoss Run<TBatch>(IReadOnlyList<TBatch> microBatches, Func<TBatch, Tensor> labelsOf, Func<TBatch, Tensor> summedLoss)
    {
        ArgumentNullException.ThrowIfNull(microBatches);
        ArgumentNullException.ThrowIfNull(labelsOf);
        ArgumentNullException.ThrowIfNull(summedLoss);
        if (microBatches.Count == 0) throw new ArgumentException("an accumulation step needs at least one micro-batch; got none.", nameof(microBatches));
        long targets = 0;
        foreach (TBatch batch in microBatches) targets += CountTargets(labelsOf(batch));
        if (targets == 0)
            throw new ArgumentException($"the {microBatches.Count} micro-batches hold no labelled target (every label after the first position is -100); there is nothing to learn from.", nameof(microBatches));
        using Tensor running = zeros([], ScalarType.Float64);
        for (int i = 0; i < microBatches.Count; i++)
        {
            using var scope = NewDisposeScope();
            Tensor sum = summedLoss(microBatches[i]);
            if (sum is null || sum.dim() != 0)
                throw new InvalidOperationException($"{nameof(summedLoss)} must return a scalar summed loss; micro-batch {i} gave {(sum is null ? "null" : $"shape [{string.Join(", ", sum.shape)}]")}.");
            Tensor loss = sum / targets;
            loss.backward();
            running.add_(loss.detach().to(ScalarType.Float64).cpu());
        }
        return new AccumulatedLoss(running.item<double>(), targets, microBatches.Count);
    }
}
