namespace LongContext.Llama.Evaluation;

/// <summary>How windows are laid over a token stream for perplexity.</summary>
public enum PerplexityProtocol
{
    /// <summary>
    /// LongLoRA's <c>eval.py</c>: a window of L tokens starts every 256 tokens (starts <c>range(0, T - L, 256)</c>
    /// with the last one dropped, the script's <c>pop()</c>); the loss runs over the whole window (its L - 1
    /// next-token predictions); perplexity is exp of the mean window loss.
    /// </summary>
    LongLora,

    /// <summary>
    /// The sliding window of PI / YaRN and HF's perplexity guide: windows of at most L tokens start every S tokens
    /// (stride), and only the tokens new to each window are scored (the first window scores all but its first
    /// token), so every token but the first is scored once; perplexity is exp of the mean over scored tokens.
    /// </summary>
    Strided,
}
