namespace LongContext.Llama.Evaluation;

/// <summary>Greedy (argmax) continuation of a prompt, the decoding of the passkey test (<c>num_beams=1</c>, no sampling).</summary>
public interface IGreedyDecoder
{
    /// <summary>The <paramref name="count"/> tokens a greedy decoder appends to <paramref name="prompt"/>.</summary>
    /// <param name="prompt">Prompt token ids, BOS included when the tokenizer adds one.</param>
    /// <param name="count">New tokens to generate, at least 1.</param>
    long[] Generate(IReadOnlyList<long> prompt, int count);
}
