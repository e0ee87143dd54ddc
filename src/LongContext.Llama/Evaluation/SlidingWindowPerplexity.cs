using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama.Evaluation;

/// <summary>Sliding-window perplexity over a token stream, by protocol and context length (<see cref="PerplexityProtocol"/>).</summary>
public static class SlidingWindowPerplexity
{
    /// <summary>The windows a protocol lays over <paramref name="tokens"/> tokens at length <paramref name="length"/>.</summary>
    /// <param name="protocol">The protocol.</param>
    /// <param name="tokens">Stream length.</param>
    /// <param name="length">Context length L.</param>
    /// <param name="options">Step, stride and window cap.</param>
    public static IReadOnlyList<PerplexityWindow> Windows(PerplexityProtocol protocol, long tokens, int length, PerplexityOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        IReadOnlyList<PerplexityWindow> all = protocol == PerplexityProtocol.LongLora
            ? PerplexityWindows.LongLora(tokens, length, options.Step)
            : PerplexityWindows.Strided(tokens, length, options.Stride);
        return options.MaxWindows is int max && all.Count > max ? all.Take(max).ToList() : all;
    }

    /// <summary>Perplexity of every protocol at every length of <paramref name="options"/>, windows one at a time.</summary>
    /// <param name="scorer">Scores a window (e.g. <see cref="LlamaScorer"/> over a model in eval mode).</param>
    /// <param name="tokens">The evaluation stream.</param>
    /// <param name="options">Lengths, protocols, step, stride.</param>
    /// <param name="progress">Reports "protocol L: window i / n" lines, or null.</param>
    /// <returns>One result per (protocol, length), protocols outer.</returns>
    /// <exception cref="ArgumentException">The stream is too short for a protocol at a length, the stride exceeds a length,
    /// or a step or stride is set for a protocol the options do not run (<see cref="PerplexityOptions"/>); before any work.</exception>
    /// <exception cref="InvalidDataException">A token id is outside the scorer's vocabulary.</exception>
    public static IReadOnlyList<PerplexityResult> Evaluate(ICausalLmScorer scorer, TokenSequence tokens, PerplexityOptions options, IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(options);
        options.CheckSettingsUsed(nameof(options));
        var plan = new List<(PerplexityProtocol Protocol, int Length, IReadOnlyList<PerplexityWindow> Windows)>();
        foreach (var protocol in options.Protocols)
            foreach (int length in options.Lengths)
                plan.Add((protocol, length, Windows(protocol, tokens.Count, length, options)));   // all checks before any work

        var results = new List<PerplexityResult>();
        foreach (var (protocol, length, windows) in plan)
        {
            double nll = 0;
            long scored = 0;
            for (int i = 0; i < windows.Count; i++)
            {
                var (sum, count) = ScoreWindow(scorer, tokens, windows[i]);
                if (count != windows[i].Scored)
                    throw new InvalidOperationException($"the scorer counted {count} targets in a window that scores {windows[i].Scored}.");
                nll += sum;
                scored += count;
                progress?.Report($"{protocol} L={length}: window {i + 1} / {windows.Count}");
            }
            results.Add(new PerplexityResult(protocol, length, windows.Count, scored, nll / scored));
        }
        return results;
    }

    private static (double Sum, long Count) ScoreWindow(ICausalLmScorer scorer, TokenSequence tokens, PerplexityWindow window)
    {
        long[] ids = tokens.Read(window.Start, window.Length, scorer.VocabSize);
        var labels = (long[])ids.Clone();
        for (int j = 0; j < window.FirstScored; j++) labels[j] = ChunkedCausalLmLoss.IgnoreIndex;
        using var scope = NewDisposeScope();
        Tensor idTensor = torch.tensor(ids, dtype: ScalarType.Int64).unsqueeze(0);
        Tensor labelTensor = torch.tensor(labels, dtype: ScalarType.Int64).unsqueeze(0);
        return scorer.Score(idTensor, labelTensor);
    }
}
