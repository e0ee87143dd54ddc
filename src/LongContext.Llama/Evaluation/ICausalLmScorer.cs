using static TorchSharp.torch;

namespace LongContext.Llama.Evaluation;

/// <summary>What sliding-window perplexity needs from a model: the summed next-token loss of one window.</summary>
public interface ICausalLmScorer
{
    /// <summary>Size of the vocabulary; token ids must lie in [0, VocabSize).</summary>
    long VocabSize { get; }

    /// <summary>
    /// The sum over labelled targets of <c>-log p(label[t+1] | ids[..t])</c> (HF's shift; -100 ignored) and the
    /// number of labelled targets, without gradients.
    /// </summary>
    /// <param name="inputIds">Token ids (1, N), int64.</param>
    /// <param name="labels">Labels (1, N), int64, aligned with the inputs; -100 where a position is not scored.</param>
    (double NllSum, long Targets) Score(Tensor inputIds, Tensor labels);
}
