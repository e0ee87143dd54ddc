using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// Next-token cross-entropy computed from the last hidden states and the output head's weight, a chunk of positions
/// at a time, with the vocabulary projection recomputed in backward: a row of N tokens never holds (N, vocab)
/// logits (at N = 32k and a 32,000-token vocabulary that tensor alone is 4.2 GB in float32), only
/// (<c>chunkSize</c>, vocab) per chunk.
/// </summary>
/// <remarks>
/// <para>The same loss as the model's plain one (HF's causal-LM loss, <c>CausalLmLoss</c> in LongContext.Llama):
/// the hidden state at position t predicts the label at t + 1, labels equal to <see cref="IgnoreIndex"/> are skipped,
/// and the mean runs over the labelled targets. Logits are <c>hidden · W^T</c> in the inputs' dtype, then the
/// cross-entropy is taken in float32 (float64 for float64 inputs), as the plain loss does after its
/// <c>.float()</c>; the sum over chunks is accumulated in float64. Gradients flow to the hidden states and to
/// the head weight (tied or not) when they require them; the weight's gradient is accumulated over chunks in
/// float32 (float64 for float64 inputs) and cast to the weight's dtype once.</para>
/// <para>Memory: forward keeps the hidden states, the weight and the labels (all already alive) and one chunk's
/// logits at a time; backward recomputes each chunk's logits, turns them into <c>softmax - onehot</c> in place and
/// uses them for both gradients.</para>
/// </remarks>
public static class ChunkedCausalLmLoss
{
    /// <summary>Label value that contributes nothing to the loss (HF's <c>-100</c>).</summary>
    public const long IgnoreIndex = -100;

    /// <summary>Positions per chunk when none is given: (1024, 32000) float32 logits are 131 MB.</summary>
    public const int DefaultChunkSize = 1024;

    /// <summary>Mean cross-entropy over the labelled next-token targets (the model's plain loss, chunked).</summary>
    /// <param name="hidden">Last hidden states (B, N, H), floating point; the head's input.</param>
    /// <param name="headWeight">Output head weight (vocab, H), same dtype and device as <paramref name="hidden"/>
    /// (the <c>lm_head</c> weight, or the embedding table when tied).</param>
    /// <param name="labels">Targets (B, N), integer, aligned with the inputs (shifted inside); values in [0, vocab) or -100.</param>
    /// <param name="chunkSize">Positions per chunk, at least 1.</param>
    /// <returns>A scalar float32 (float64 for float64 inputs) loss; NaN when no target is labelled, as the plain loss.</returns>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices that do not fit, a label out of range, or N &lt; 2.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="chunkSize"/> is less than 1.</exception>
    public static Tensor Compute(Tensor hidden, Tensor headWeight, Tensor labels, int chunkSize = DefaultChunkSize)
        => Run(hidden, headWeight, labels, chunkSize, mean: true);

    /// <summary>
    /// Sum of the cross-entropy over the labelled next-token targets; divide by the number of targets of the whole
    /// accumulated batch for gradient accumulation (<see cref="GradientAccumulation"/>).
    /// </summary>
    /// <param name="hidden">Last hidden states (B, N, H), floating point.</param>
    /// <param name="headWeight">Output head weight (vocab, H), same dtype and device as <paramref name="hidden"/>.</param>
    /// <param name="labels">Targets (B, N), integer, aligned with the inputs; values in [0, vocab) or -100.</param>
    /// <param name="chunkSize">Positions per chunk, at least 1.</param>
    /// <returns>A scalar float32 (float64 for float64 inputs) sum; 0 when no target is labelled.</returns>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices that do not fit, a label out of range, or N &lt; 2.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="chunkSize"/> is less than 1.</exception>
    public static Tensor ComputeSum(Tensor hidden, Tensor headWeight, Tensor labels, int chunkSize = DefaultChunkSize)
        => Run(hidden, headWeight, labels, chunkSize, mean: false);

    private static Tensor Run(Tensor hidden, Tensor headWeight, Tensor labels, int chunkSize, bool mean)
    {
        Validate(hidden, headWeight, labels, chunkSize);
        var state = new ChunkedCrossEntropyState(chunkSize, mean);
        if (!torch.is_grad_enabled() || (!hidden.requires_grad && !headWeight.requires_grad))
        {
            using var noGrad = torch.no_grad();
            return ChunkedCrossEntropyFunction.Forward(hidden, headWeight, labels, state);
        }
        return ChunkedCrossEntropyFunction.apply(hidden, headWeight, labels, state);
    }

    private static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    private static void Validate(Tensor hidden, Tensor weight, Tensor labels, int chunkSize)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(labels);
        if (chunkSize < 1)
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, $"{nameof(chunkSize)} must be at least 1 position; got {chunkSize}.");
        if (hidden.dim() != 3)
            throw new ArgumentException($"{nameof(hidden)} must be (B, N, H); got shape [{string.Join(", ", hidden.shape)}].", nameof(hidden));
        if (weight.dim() != 2 || weight.size(1) != hidden.size(2))
            throw new ArgumentException(
                $"headWeight must be (vocab, H) with H = {hidden.size(2)} from hidden; got shape [{string.Join(", ", weight.shape)}].", "headWeight");
        if (labels.dim() != 2 || labels.size(0) != hidden.size(0) || labels.size(1) != hidden.size(1))
            throw new ArgumentException(
                $"{nameof(labels)} shape [{string.Join(", ", labels.shape)}] must be (B, N) = [{hidden.size(0)}, {hidden.size(1)}] matching hidden [{string.Join(", ", hidden.shape)}].",
                nameof(labels));
        if (hidden.size(1) < 2)
            throw new ArgumentException($"sequences must hold at least 2 tokens to predict a next one; got N = {hidden.size(1)}.", nameof(hidden));
        if (!hidden.is_floating_point() || hidden.dtype != weight.dtype)
            throw new ArgumentException($"hidden ({hidden.dtype}) and headWeight ({weight.dtype}) must share one floating-point dtype.", nameof(hidden));
        if (labels.is_floating_point() || labels.dtype == ScalarType.Bool || labels.is_complex())
            throw new ArgumentException($"{nameof(labels)} must hold integer token ids; got {labels.dtype}.", nameof(labels));
        if (!SameDevice(hidden, weight) || !SameDevice(hidden, labels))
            throw new ArgumentException($"hidden ({hidden.device}), headWeight ({weight.device}) and labels ({labels.device}) must be on one device.", nameof(hidden));
        long vocab = weight.size(0);
        using var scope = NewDisposeScope();
        Tensor targets = labels.narrow(1, 1, labels.size(1) - 1);
        Tensor bad = targets.ne(IgnoreIndex).logical_and(targets.lt(0).logical_or(targets.ge(vocab)));
        if (bad.any().item<bool>())
        {
            long[] at = bad.nonzero()[0].data<long>().ToArray();
            long value = targets[at[0], at[1]].item<long>();
            throw new ArgumentException(
                $"{nameof(labels)}[{at[0]}, {at[1] + 1}] = {value} is outside the vocabulary [0, {vocab}) and is not the ignore index {IgnoreIndex}.", nameof(labels));
        }
    }
}
