using LongContext.Text.Tokenization;

namespace LongContext.Text.Corpus;

/// <summary>
/// Turns documents (ids without special tokens) into rows of L tokens as LongLoRA or LongQLoRA do (see
/// <see cref="PackingMode"/>). Pure and streaming: rows come out as they fill.
/// <para>
/// <see cref="PackingMode.Concatenate"/> inserts BOS/EOS ids between separately tokenized documents; LongLoRA
/// tokenizes the joined string <c>eos_token.join(texts)</c> instead. The two agree because HF tokenizers splits
/// added tokens such as <c>&lt;/s&gt;</c> out of the text first and tokenizes each stretch on its own (the Llama-2
/// <c>tokenizer.json</c> prepends ▁ to each stretch as to each document; byte-level pre-tokenizers see the same
/// stretches). Padding positions get label -100 and attention mask 0 (HF: 1 = token, 0 = padding); LongLoRA's
/// collator leaves the mask at 1 there, which changes nothing for causal attention with right padding.
/// </para>
/// </summary>
public static class CorpusPacker
{
    /// <summary>Label of positions that do not count in the loss (PyTorch's cross-entropy <c>ignore_index</c>).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Packs documents into rows.</summary>
    /// <param name="documents">
    /// Each document's ids, without special tokens, in order; ids are non-negative. In <see cref="PackingMode.TruncateOrPad"/>
    /// without <see cref="PackingOptions.AddBos"/> a document must not be empty (its row would hold no tokens): an empty one
    /// is an <see cref="ArgumentException"/> naming its index, as the rows are enumerated.
    /// </param>
    /// <param name="specialTokens">BOS (if <see cref="PackingOptions.AddBos"/>), EOS (to join, in Concatenate mode), pad.</param>
    /// <param name="options">Row length and scheme.</param>
    /// <exception cref="InvalidOperationException">BOS or EOS is needed and the tokenizer has none.</exception>
    /// <exception cref="ArgumentException">At once: <see cref="PackingOptions.DocumentsPerGroup"/> set away from its default in
    /// TruncateOrPad mode. As the rows are enumerated: a null document, or a negative id (document, position and value named).</exception>
    public static IEnumerable<PackedRow> Pack(IEnumerable<int[]> documents, SpecialTokenIds specialTokens, PackingOptions options)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(specialTokens);
        ArgumentNullException.ThrowIfNull(options);
        options.CheckSettingsUsed(nameof(options));
        int? bos = options.AddBos
            ? specialTokens.Bos ?? throw new InvalidOperationException($"{nameof(PackingOptions.AddBos)} is set but the tokenizer has no BOS token.")
            : null;
        int pad = options.PadId ?? specialTokens.Pad ?? specialTokens.Eos ?? 0;
        if (options.Mode == PackingMode.TruncateOrPad) return TruncateOrPad(Checked(documents, "document", nameof(documents)), bos, pad, options.RowLength);
        int eos = specialTokens.Eos ?? throw new InvalidOperationException("Concatenate packing joins documents with EOS, and the tokenizer has no EOS token.");
        return Concatenate(Segments(Checked(documents, "document", nameof(documents)), bos, eos, options.DocumentsPerGroup), pad, options.RowLength);
    }

    /// <summary>
    /// Packs one continuous token stream (a token file: its chunks are not documents) into rows of L: no BOS or EOS
    /// added, the tail padded.
    /// </summary>
    /// <exception cref="ArgumentException">As the rows are enumerated: a null chunk, or a negative id (chunk, position and value named).</exception>
    public static IEnumerable<PackedRow> PackStream(IEnumerable<int[]> chunks, int rowLength, int padId)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 2);
        ArgumentOutOfRangeException.ThrowIfNegative(padId);
        return Concatenate(Checked(chunks, "chunk", nameof(chunks)).Select(c => (c, false)), padId, rowLength);
    }

    /// <summary>The arrays as they come, each checked: not null, every id non-negative (a -100 label is not an id).</summary>
    private static IEnumerable<int[]> Checked(IEnumerable<int[]> arrays, string what, string parameter)
    {
        int index = 0;
        foreach (int[] ids in arrays)
        {
            if (ids is null) throw new ArgumentException($"{what} {index} is null; expected an array of token ids.", parameter);
            int at = Array.FindIndex(ids, id => id < 0);
            if (at >= 0)
                throw new ArgumentOutOfRangeException(parameter, ids[at], $"{what} {index} holds {ids[at]} at position {at}; token ids are non-negative.");
            index++;
            yield return ids;
        }
    }

    /// <summary>The token stream of Concatenate mode; the flag marks the end of a group (pad the row there).</summary>
    private static IEnumerable<(int[] Ids, bool EndsGroup)> Segments(IEnumerable<int[]> documents, int? bos, int eos, int? perGroup)
    {
        int inGroup = 0;
        bool any = false;
        foreach (int[] doc in documents)
        {
            if (inGroup == 0) { if (bos is { } b) yield return ([b], false); }
            else yield return ([eos], false);
            inGroup++;
            any = true;
            bool ends = perGroup is { } g && inGroup == g;
            yield return (doc, ends);
            if (ends) inGroup = 0;
        }
        if (any && inGroup > 0) yield return ([], true);
    }

    private static IEnumerable<PackedRow> Concatenate(IEnumerable<(int[] Ids, bool EndsGroup)> segments, int pad, int rowLength)
    {
        var row = new int[rowLength];
        int filled = 0;
        foreach ((int[] ids, bool endsGroup) in segments)
        {
            int at = 0;
            while (at < ids.Length)
            {
                int n = Math.Min(rowLength - filled, ids.Length - at);
                Array.Copy(ids, at, row, filled, n);
                filled += n;
                at += n;
                if (filled == rowLength)
                {
                    yield return new PackedRow(row, rowLength);
                    row = new int[rowLength];
                    filled = 0;
                }
            }
            if (endsGroup && filled > 0)
            {
                yield return Padded(row, filled, pad);
                row = new int[rowLength];
                filled = 0;
            }
        }
        if (filled > 0) yield return Padded(row, filled, pad);
    }

    private static IEnumerable<PackedRow> TruncateOrPad(IEnumerable<int[]> documents, int? bos, int pad, int rowLength)
    {
        int index = 0;
        foreach (int[] doc in documents)
        {
            if (doc.Length == 0 && bos is null)
                throw new ArgumentException(
                    $"document {index} is empty and {nameof(PackingOptions.AddBos)} is false: {nameof(PackingMode.TruncateOrPad)} would make a row with no tokens " +
                    $"(nothing to train on); drop empty documents, or set {nameof(PackingOptions.AddBos)} so that each row starts with BOS.", nameof(documents));
            index++;
            var row = new int[rowLength];
            int filled = 0;
            if (bos is { } b) row[filled++] = b;
            int n = Math.Min(doc.Length, rowLength - filled);
            Array.Copy(doc, 0, row, filled, n);
            filled += n;
            yield return Padded(row, filled, pad);
        }
    }

    private static PackedRow Padded(int[] row, int filled, int pad)
    {
        Array.Fill(row, pad, filled, row.Length - filled);
        return new PackedRow(row, filled);
    }

    /// <summary>
    /// Checks that rows of <paramref name="rowLength"/> fit a model, before any work is done.
    /// </summary>
    /// <param name="rowLength">L.</param>
    /// <param name="modelLimit">The positions the model takes (its <c>max_position_embeddings</c> after any context extension).</param>
    /// <param name="limitName">What the limit is, for the message.</param>
    /// <exception cref="ArgumentOutOfRangeException">L exceeds the limit (both named).</exception>
    public static void CheckFits(int rowLength, int modelLimit, string limitName = "max_position_embeddings")
    {
        if (rowLength > modelLimit)
            throw new ArgumentOutOfRangeException(nameof(rowLength), rowLength,
                $"RowLength {rowLength} exceeds the model's {limitName} of {modelLimit}; extend the context first (e.g. Position Interpolation to {rowLength}) or use rows of at most {modelLimit} tokens.");
    }
}
