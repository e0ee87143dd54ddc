using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>HF's causal-LM loss: logits at position t predict the label at t + 1; labels equal to -100 are skipped.</summary>
public static class CausalLmLoss
{
    /// <summary>Label value that contributes nothing to the loss.</summary>
    public const long IgnoreIndex = -100;

    /// <summary>Mean cross-entropy over the non-ignored shifted labels, computed in float32.</summary>
    /// <param name="logits">(B, N, vocab), any floating dtype.</param>
    /// <param name="labels">(B, N) int64, aligned with the inputs (the shift happens here).</param>
    /// <returns>A scalar float32 tensor.</returns>
    public static Tensor Compute(Tensor logits, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        if (logits.dim() != 3 || labels.dim() != 2 || logits.size(0) != labels.size(0) || logits.size(1) != labels.size(1))
            throw new ArgumentException(
                $"{nameof(labels)} shape [{string.Join(", ", labels.shape)}] must be (B, N) matching logits [{string.Join(", ", logits.shape)}] = (B, N, vocab).",
                nameof(labels));
        if (logits.size(1) < 2)
            throw new ArgumentException($"sequences must hold at least 2 tokens to predict a next one; got N = {logits.size(1)}.", nameof(logits));
        using var scope = NewDisposeScope();
        long n = logits.size(1), v = logits.size(2);
        Tensor shiftedLogits = logits.narrow(1, 0, n - 1).to(ScalarType.Float32).reshape(-1, v);
        Tensor shiftedLabels = labels.narrow(1, 1, n - 1).reshape(-1).to(ScalarType.Int64);
        return nn.functional.cross_entropy(shiftedLogits, shiftedLabels, ignore_index: IgnoreIndex).MoveToOuterDisposeScope();
    }
}
