namespace LongContext.Llama.Evaluation;

/// <summary>
/// One evaluation window: tokens [Start, Start + Length) of the stream, labels -100 before
/// <see cref="FirstScored"/> (window-relative), so the window scores <see cref="Scored"/> next-token predictions.
/// </summary>
/// <param name="Start">First token of the window in the stream.</param>
/// <param name="Length">Tokens in the window.</param>
/// <param name="FirstScored">Window position of the first label that counts (0: all; position 0 is never a target after the shift).</param>
public readonly record struct PerplexityWindow(long Start, int Length, int FirstScored)
{
    /// <summary>Next-token predictions scored: the labels at positions max(1, FirstScored)..Length-1.</summary>
    public int Scored => Length - Math.Max(1, FirstScored);
}
