using LongContext.Llama.Evaluation;
using LongContext.Text.Corpus;
using LongContext.Text.Tokenization;

namespace LongContext.Demo.Experiment;

/// <summary>
/// Training rows of one length: the training chapters packed by <see cref="CorpusPacker"/> (LongLoRA's Concatenate
/// scheme: BOS, chapters joined by EOS) and, mixed in at a fixed fraction, passkey rows in LongLoRA's prompt format
/// (<see cref="PasskeyPrompt"/>, the same prompts the passkey test builds) followed by their answer and EOS,
/// shorter than the row (padding labelled -100). Passkey rows use seeds from <see cref="TrainingSeedBase"/> up, so
/// no training prompt is an evaluation prompt (those use seeds 0..trials-1).
/// </summary>
public static class TrainingRows
{
    /// <summary>First passkey seed of the training rows.</summary>
    public const long TrainingSeedBase = 1_000_000;

    /// <summary>
    /// <paramref name="count"/> rows of <paramref name="rowLength"/> tokens: whole shuffled epochs of the packed text
    /// rows, every row replaced with probability <paramref name="passkeyFraction"/> by a fresh passkey row.
    /// </summary>
    /// <param name="documents">Training chapters' ids.</param>
    /// <param name="tokenizer">The tokenizer (special ids, passkey prompts).</param>
    /// <param name="rowLength">Tokens per row.</param>
    /// <param name="count">Rows wanted (steps x batch).</param>
    /// <param name="passkeyFraction">Share of passkey rows, in [0, 1).</param>
    /// <param name="seed">Seed of the shuffles and the passkey draws.</param>
    /// <returns>Ids and labels, row-major (count x rowLength).</returns>
    public static (long[] Ids, long[] Labels) Build(IReadOnlyList<int[]> documents, ITextTokenizer tokenizer, int rowLength, int count, double passkeyFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (passkeyFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(passkeyFraction), passkeyFraction, "the passkey fraction must be in [0, 1).");
        var text = CorpusPacker.Pack(documents, tokenizer.SpecialTokens, new PackingOptions { RowLength = rowLength })
            .Where(r => r.Length == rowLength).ToList();
        if (text.Count == 0) throw new InvalidOperationException($"the training text gives no full row of {rowLength} tokens.");
        var random = new Random(seed);
        var passkeys = new PasskeyRows(tokenizer, rowLength);
        long[] ids = new long[(long)count * rowLength], labels = new long[(long)count * rowLength];
        int[] order = [];
        int next = int.MaxValue;
        long passkeySeed = TrainingSeedBase + seed * 100_000L;
        for (int r = 0; r < count; r++)
        {
            if (next >= order.Length)
            {
                order = Enumerable.Range(0, text.Count).ToArray();
                random.Shuffle(order);
                next = 0;
            }
            Span<long> rowIds = ids.AsSpan(r * rowLength, rowLength), rowLabels = labels.AsSpan(r * rowLength, rowLength);
            if (random.NextDouble() < passkeyFraction)
            {
                passkeys.Write(passkeySeed++, random, rowIds, rowLabels);
                continue;
            }
            int[] row = text[order[next++]].InputIds;
            for (int i = 0; i < rowLength; i++) rowIds[i] = rowLabels[i] = row[i];
        }
        return (ids, labels);
    }

    /// <summary>The held-out chapters as one stream (BOS, chapters joined by EOS), its first <paramref name="tokens"/> ids.</summary>
    /// <param name="documents">Held-out chapters' ids.</param>
    /// <param name="tokenizer">The tokenizer (special ids).</param>
    /// <param name="tokens">Tokens wanted.</param>
    /// <exception cref="InvalidOperationException">The held-out text is shorter.</exception>
    public static long[] EvaluationStream(IReadOnlyList<int[]> documents, ITextTokenizer tokenizer, int tokens)
    {
        var stream = new List<long>(tokens);
        foreach (var row in EvaluationRows(documents, tokenizer))
        {
            stream.AddRange(row.InputIds.Take(row.Length).Select(i => (long)i));
            if (stream.Count >= tokens) return stream.Take(tokens).ToArray();
        }
        throw new InvalidOperationException($"the held-out text has {stream.Count} tokens; {tokens} were asked for.");
    }

    /// <summary>The length of the whole evaluation stream of <paramref name="documents"/>: the most <see cref="EvaluationStream"/> can give.</summary>
    /// <param name="documents">Held-out chapters' ids.</param>
    /// <param name="tokenizer">The tokenizer (special ids).</param>
    public static long EvaluationStreamLength(IReadOnlyList<int[]> documents, ITextTokenizer tokenizer) =>
        EvaluationRows(documents, tokenizer).Sum(r => (long)r.Length);

    private static IEnumerable<PackedRow> EvaluationRows(IReadOnlyList<int[]> documents, ITextTokenizer tokenizer) =>
        CorpusPacker.Pack(documents, tokenizer.SpecialTokens, new PackingOptions { RowLength = 4096 });

    /// <summary>Passkey rows of one length: prompt + answer + EOS, filler length drawn uniformly up to what fits.</summary>
    private sealed class PasskeyRows
    {
        private readonly ITextTokenizer tokenizer;
        private readonly int rowLength;
        private readonly int maxFiller;
        private readonly int pad;
        private readonly int eos;

        public PasskeyRows(ITextTokenizer tokenizer, int rowLength)
        {
            this.tokenizer = tokenizer;
            this.rowLength = rowLength;
            eos = tokenizer.SpecialTokens.Eos ?? throw new InvalidOperationException("the tokenizer has no EOS token.");
            pad = tokenizer.SpecialTokens.Pad ?? eos;
            // The longest filler whose prompt leaves room for the longest answer (5 digits) and EOS (seed 0's split).
            int answerRoom = PasskeyRetrieval.AnswerTokens(tokenizer, "49999").Length + 1;
            maxFiller = PasskeyRetrieval.Prompt(tokenizer, rowLength - answerRoom, 0, PasskeyLengthMode.TokenBudget).GarbageCharacters;
        }

        public void Write(long seed, Random random, Span<long> ids, Span<long> labels)
        {
            int filler = random.Next(1, maxFiller + 1);
            while (true)
            {
                PasskeyCase c = PasskeyPrompt.Generate(filler, seed);
                int[] prompt = tokenizer.Encode(c.Prompt);
                long[] answer = PasskeyRetrieval.AnswerTokens(tokenizer, c.Answer);
                int used = prompt.Length + answer.Length + 1;
                if (used > rowLength)
                {
                    filler = Math.Max(1, filler - Math.Max(1, filler / 10));
                    continue;
                }
                int at = 0;
                foreach (int t in prompt) { ids[at] = labels[at] = t; at++; }
                foreach (long t in answer) { ids[at] = labels[at] = t; at++; }
                ids[at] = labels[at] = eos;
                at++;
                for (; at < rowLength; at++) { ids[at] = pad; labels[at] = CorpusPacker.IgnoreIndex; }
                return;
            }
        }
    }
}
