namespace LongContext.Llama.Evaluation;

/// <summary>The windows of both perplexity protocols as pure functions of the stream length (see <see cref="PerplexityProtocol"/>).</summary>
public static class PerplexityWindows
{
    /// <summary>LongLoRA's step between window starts.</summary>
    public const int LongLoraStep = 256;

    /// <summary>
    /// LongLoRA's <c>get_as_batch</c>: starts <c>0, step, 2 step, ...</c> below <c>tokens - length</c>, the last
    /// start dropped; every window is <paramref name="length"/> long and scored whole
    /// (<c>ceil((T - L) / step) - 1</c> windows).
    /// </summary>
    /// <param name="tokens">Tokens in the stream.</param>
    /// <param name="length">Window length L, at least 2.</param>
    /// <param name="step">Distance between starts (LongLoRA: 256), at least 1.</param>
    /// <exception cref="ArgumentException">The stream is too short for one window after the drop (it needs more than L + step tokens).</exception>
    public static IReadOnlyList<PerplexityWindow> LongLora(long tokens, int length, int step = LongLoraStep)
    {
        CheckLength(length);
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, $"{nameof(step)} must be at least 1; got {step}.");
        var windows = new List<PerplexityWindow>();
        for (long start = 0; start < tokens - length; start += step) windows.Add(new PerplexityWindow(start, length, 0));
        if (windows.Count > 0) windows.RemoveAt(windows.Count - 1);
        if (windows.Count == 0)
            throw new ArgumentException(
                $"{tokens} tokens give no LongLoRA window of length {length} with step {step}: the protocol drops its last window and needs more than {length + step} tokens.",
                nameof(tokens));
        return windows;
    }

    /// <summary>
    /// HF's perplexity guide: <c>for begin in range(0, T, S)</c>, window [begin, min(begin + L, T)), the last
    /// <c>end - previous_end</c> tokens labelled, stopping after the window that reaches the end.
    /// </summary>
    /// <param name="tokens">Tokens in the stream, at least 2.</param>
    /// <param name="length">Largest window L, at least 2.</param>
    /// <param name="stride">Distance S between window starts, in [1, L].</param>
    /// <exception cref="ArgumentException">Fewer than 2 tokens.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A window length below 2 or a stride outside [1, L].</exception>
    public static IReadOnlyList<PerplexityWindow> Strided(long tokens, int length, int stride)
    {
        CheckLength(length);
        if (stride < 1 || stride > length)
            throw new ArgumentOutOfRangeException(nameof(stride), stride, $"{nameof(stride)} must be in [1, {length}] (the window length); got {stride}.");
        if (tokens < 2) throw new ArgumentException($"the stream needs at least 2 tokens; got {tokens}.", nameof(tokens));
        var windows = new List<PerplexityWindow>();
        long previousEnd = 0;
        for (long begin = 0; begin < tokens; begin += stride)
        {
            long end = Math.Min(begin + length, tokens);
            int windowLength = (int)(end - begin);
            int targets = (int)(end - previousEnd);
            windows.Add(new PerplexityWindow(begin, windowLength, windowLength - targets));
            previousEnd = end;
            if (end == tokens) break;
        }
        return windows;
    }

    private static void CheckLength(int length)
    {
        if (length < 2) throw new ArgumentOutOfRangeException(nameof(length), length, $"the window length must be at least 2 tokens; got {length}.");
    }
}
