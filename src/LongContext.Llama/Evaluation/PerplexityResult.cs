namespace LongContext.Llama.Evaluation;

/// <summary>Perplexity of one protocol at one context length.</summary>
/// <param name="Protocol">The window protocol.</param>
/// <param name="Length">The context length L (window size).</param>
/// <param name="Windows">Windows evaluated.</param>
/// <param name="ScoredTokens">Next-token predictions scored over all windows.</param>
/// <param name="MeanLoss">LongLoRA: the mean of the window losses (equal here to the token mean: every window scores L - 1); strided: the mean over scored tokens. Natural log.</param>
public sealed record PerplexityResult(PerplexityProtocol Protocol, int Length, int Windows, long ScoredTokens, double MeanLoss)
{
    /// <summary>exp(<see cref="MeanLoss"/>). (LongLoRA's script prints <c>2.71828 ** loss</c>, lower by a relative 7e-7 x loss.)</summary>
    public double Perplexity => Math.Exp(MeanLoss);
}
