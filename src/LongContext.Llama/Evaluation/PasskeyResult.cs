namespace LongContext.Llama.Evaluation;

/// <summary>One passkey trial.</summary>
/// <param name="Seed">numpy seed of the prompt.</param>
/// <param name="Key">The key hidden in the prompt.</param>
/// <param name="PromptTokens">Prompt length in tokens (BOS included).</param>
/// <param name="DepthCharacters">Filler characters before the key line.</param>
/// <param name="GarbageCharacters">Filler characters in all.</param>
/// <param name="Expected">The answer's token ids (the key's encoding without BOS).</param>
/// <param name="Generated">What greedy decoding produced, as many tokens as the answer.</param>
public sealed record PasskeyTrial(long Seed, long Key, int PromptTokens, int DepthCharacters, int GarbageCharacters,
    IReadOnlyList<long> Expected, IReadOnlyList<long> Generated)
{
    /// <summary>Exact match of every generated token.</summary>
    public bool Correct => Expected.SequenceEqual(Generated);
}

/// <summary>Passkey accuracy at one target length.</summary>
/// <param name="TargetLength">The target length in tokens.</param>
/// <param name="Trials">Every trial.</param>
public sealed record PasskeyResult(int TargetLength, IReadOnlyList<PasskeyTrial> Trials)
{
    /// <summary>Trials answered exactly.</summary>
    public int Correct => Trials.Count(t => t.Correct);

    /// <summary>Correct / trials.</summary>
    public double Accuracy => (double)Correct / Trials.Count;

    /// <summary>Mean prompt length in tokens, rounded down (the script's <c>total_tokens // num_tests</c>).</summary>
    public int MeanPromptTokens => (int)(Trials.Sum(t => (long)t.PromptTokens) / Trials.Count);
}
