using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama.Evaluation;

/// <summary>
/// Scores windows with a <see cref="LlamaForCausalLM"/>: final hidden states from the decoder, then the chunked
/// causal-LM loss against the head weight (<see cref="ChunkedCausalLmLoss"/>), so a 32k-token window never holds
/// its (N, vocab) logits. Runs in the model's current mode without gradients (evaluation puts it in eval mode).
/// </summary>
public sealed class LlamaScorer : ICausalLmScorer
{
    private readonly LlamaForCausalLM model;
    private readonly int chunkSize;

    /// <summary>Creates the scorer.</summary>
    /// <param name="model">The model, on its device.</param>
    /// <param name="chunkSize">Positions per loss chunk, at least 1.</param>
    public LlamaScorer(LlamaForCausalLM model, int chunkSize = ChunkedCausalLmLoss.DefaultChunkSize)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.chunkSize = chunkSize >= 1 ? chunkSize
            : throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, $"{nameof(chunkSize)} must be at least 1; got {chunkSize}.");
    }

    /// <inheritdoc />
    public long VocabSize => model.Config.VocabSize;

    /// <inheritdoc />
    public (double NllSum, long Targets) Score(Tensor inputIds, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(labels);
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var weight = LlamaHead.Weight(model);
        Tensor ids = inputIds.to(weight.device), targets = labels.to(weight.device);
        Tensor positions = torch.arange(ids.size(1), dtype: ScalarType.Int64, device: weight.device).unsqueeze(0);
        Tensor hidden = model.Model.forward(ids, positions, null);
        double sum = ChunkedCausalLmLoss.ComputeSum(hidden, weight, targets, chunkSize).to(ScalarType.Float64).item<double>();
        long count = targets.narrow(1, 1, targets.size(1) - 1).ne(ChunkedCausalLmLoss.IgnoreIndex).count_nonzero().item<long>();
        return (sum, count);
    }
}
