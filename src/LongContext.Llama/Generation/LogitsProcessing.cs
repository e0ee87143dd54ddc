using static TorchSharp.torch;

namespace LongContext.Llama.Generation;

/// <summary>
/// The next-token choice as pure functions of the logits, HF's logits processors number for number: repetition
/// penalty, temperature, top-k, top-p, then argmax or a seeded draw. Logits are (B, vocab) floating tensors; results
/// are new tensors in the same dtype.
/// </summary>
public static class LogitsProcessing
{
    /// <summary>
    /// HF's <c>RepetitionPenaltyLogitsProcessor</c>: for every id already in a row, a positive logit is divided by
    /// <paramref name="penalty"/> and a negative one multiplied by it.
    /// </summary>
    /// <param name="logits">(B, vocab).</param>
    /// <param name="seen">Per row, the ids so far (duplicates allowed), each in [0, vocab).</param>
    /// <param name="penalty">Positive and finite; 1 returns the logits unchanged (copied).</param>
    /// <exception cref="ArgumentOutOfRangeException">A penalty that is not positive and finite, or a seen id outside [0, vocab).</exception>
    public static Tensor RepetitionPenalty(Tensor logits, IReadOnlyList<IReadOnlyCollection<int>> seen, double penalty)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(seen);
        if (!(penalty > 0 && double.IsFinite(penalty)))
            throw new ArgumentOutOfRangeException(nameof(penalty), penalty, $"{nameof(penalty)} must be a positive finite number; got {penalty}.");
        if (seen.Count != logits.size(0))
            throw new ArgumentException($"{nameof(seen)} has {seen.Count} rows; the logits have {logits.size(0)}.", nameof(seen));
        long vocab = logits.size(-1);
        for (int row = 0; row < seen.Count; row++)
        {
            ArgumentNullException.ThrowIfNull(seen[row], $"{nameof(seen)}[{row}]");
            foreach (int id in seen[row])
                if (id < 0 || id >= vocab)
                    throw new ArgumentOutOfRangeException(nameof(seen), id, $"{nameof(seen)}[{row}] holds token id {id}, outside the vocabulary [0, {vocab}) of the logits.");
        }
        var result = logits.clone();
        if (penalty == 1.0) return result;
        using var scope = NewDisposeScope();
        for (int row = 0; row < seen.Count; row++)
        {
            if (seen[row].Count == 0) continue;
            Tensor ids = tensor(seen[row].Distinct().Select(i => (long)i).ToArray(), device: logits.device);
            Tensor line = result[row];
            Tensor score = line.index_select(0, ids);
            line.index_copy_(0, ids, where(score.lt(0), score * penalty, score / penalty));
        }
        return result;
    }

    /// <summary>HF's <c>TopKLogitsWarper</c>: logits below the k-th largest become -inf (ties with it are kept).</summary>
    /// <param name="logits">(B, vocab).</param>
    /// <param name="k">At least 1; values above the vocabulary keep everything.</param>
    public static Tensor TopK(Tensor logits, int k)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, $"{nameof(k)} must be at least 1; got {k}.");
        using var scope = NewDisposeScope();
        long kk = Math.Min(k, logits.size(-1));
        Tensor kth = logits.topk((int)kk, -1).values.narrow(-1, kk - 1, 1);
        return logits.masked_fill(logits.lt(kth), double.NegativeInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// HF's <c>TopPLogitsWarper</c>: sorting ascending, tokens whose cumulative probability is at most 1 - p become
    /// -inf, the most likely token always kept; what remains is the smallest set of most likely tokens whose
    /// probability reaches p.
    /// </summary>
    /// <param name="logits">(B, vocab).</param>
    /// <param name="p">In (0, 1]; 1 keeps everything.</param>
    public static Tensor TopP(Tensor logits, double p)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (!(p > 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, $"{nameof(p)} must be in (0, 1]; got {p}.");
        if (p == 1.0) return logits.clone();
        using var scope = NewDisposeScope();
        var (sorted, indices) = logits.sort(-1, descending: false);
        Tensor cumulative = sorted.softmax(-1).cumsum(-1);
        Tensor remove = cumulative.le(1 - p);
        remove.narrow(-1, logits.size(-1) - 1, 1).fill_(false);
        Tensor removeAtIds = remove.scatter(-1, indices, remove);
        return logits.masked_fill(removeAtIds, double.NegativeInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The sampling distribution after the options' processing: repetition penalty, temperature, top-k, top-p, softmax.
    /// </summary>
    /// <param name="logits">(B, vocab).</param>
    /// <param name="options">Decoding options (<see cref="DecodingOptions.Greedy"/> is not consulted).</param>
    /// <param name="seen">Per row, the ids so far (for the repetition penalty).</param>
    /// <returns>Probabilities (B, vocab) in the logits' dtype.</returns>
    public static Tensor Probabilities(Tensor logits, DecodingOptions options, IReadOnlyList<IReadOnlyCollection<int>> seen)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var scope = NewDisposeScope();
        Tensor x = RepetitionPenalty(logits, seen, options.RepetitionPenalty);
        if (options.Temperature != 1.0) x = x / options.Temperature;
        if (options.TopK is int k) x = TopK(x, k);
        if (options.TopP < 1.0) x = TopP(x, options.TopP);
        return x.softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The next token of each row: argmax of the penalized logits when greedy (the first index among equal maxima),
    /// else a draw from <see cref="Probabilities"/> with <paramref name="generator"/> (on the CPU, in float64).
    /// </summary>
    /// <param name="logits">(B, vocab).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="seen">Per row, the ids so far.</param>
    /// <param name="generator">A CPU generator; required when sampling.</param>
    /// <returns>One id per row.</returns>
    public static int[] Choose(Tensor logits, DecodingOptions options, IReadOnlyList<IReadOnlyCollection<int>> seen, Generator? generator)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(options);
        using var scope = NewDisposeScope();
        Tensor x = logits.detach().to(ScalarType.Float64, CPU);
        Tensor chosen;
        if (options.Greedy)
        {
            chosen = RepetitionPenalty(x, seen, options.RepetitionPenalty).argmax(-1);
        }
        else
        {
            if (generator is null) throw new ArgumentNullException(nameof(generator), "sampling needs a generator.");
            chosen = multinomial(Probabilities(x, options, seen), 1, generator: generator).squeeze(1);
        }
        return chosen.to(ScalarType.Int64).data<long>().Select(v => (int)v).ToArray();
    }
}
