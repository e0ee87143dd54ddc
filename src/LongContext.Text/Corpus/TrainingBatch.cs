using static TorchSharp.torch;

namespace LongContext.Text.Corpus;

/// <summary>
/// B rows as (B, L) int64 tensors on the CPU, HF's names: <see cref="InputIds"/>, <see cref="Labels"/> (the ids,
/// -100 at padding; the model shifts them) and <see cref="AttentionMask"/> (1 = token, 0 = padding). Dispose it.
/// </summary>
public sealed class TrainingBatch : IDisposable
{
    internal TrainingBatch(Tensor inputIds, Tensor labels, Tensor attentionMask, int[] rowIndices)
    {
        InputIds = inputIds;
        Labels = labels;
        AttentionMask = attentionMask;
        RowIndices = rowIndices;
    }

    /// <summary>(B, L) int64 token ids.</summary>
    public Tensor InputIds { get; }

    /// <summary>(B, L) int64 labels: the ids, <see cref="CorpusPacker.IgnoreIndex"/> at padding.</summary>
    public Tensor Labels { get; }

    /// <summary>(B, L) int64: 1 for tokens, 0 for padding.</summary>
    public Tensor AttentionMask { get; }

    /// <summary>Which rows of the <see cref="PackedRows"/> file the batch holds, in order.</summary>
    public IReadOnlyList<int> RowIndices { get; }

    /// <summary>Builds a batch from rows of equal length.</summary>
    /// <param name="rows">The rows: each non-null, with the same number of ids and a token count in [0, that number].</param>
    /// <param name="rowIndices">Their indices in the rows file, one per row; null for 0, 1, ...</param>
    /// <exception cref="ArgumentException">No rows, a null row, rows of different lengths, a token count outside [0, L], or
    /// <paramref name="rowIndices"/> not one per row.</exception>
    public static TrainingBatch FromRows(IReadOnlyList<PackedRow> rows, int[]? rowIndices = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("A batch needs at least one row.", nameof(rows));
        if (rowIndices is not null && rowIndices.Length != rows.Count)
            throw new ArgumentException($"{nameof(rowIndices)} has {rowIndices.Length} entries for {rows.Count} rows; expected one per row.", nameof(rowIndices));
        for (int b = 0; b < rows.Count; b++)
        {
            if (rows[b] is not { InputIds: not null } r) throw new ArgumentException($"Row {b} (or its ids) is null.", nameof(rows));
            if (r.Length < 0 || r.Length > r.InputIds.Length)
                throw new ArgumentOutOfRangeException(nameof(rows), r.Length, $"Row {b} has {r.Length} tokens; expected a count in [0, {r.InputIds.Length}] (its ids).");
        }
        int length = rows[0].InputIds.Length;
        var ids = new long[rows.Count * length];
        var labels = new long[ids.Length];
        var mask = new long[ids.Length];
        for (int b = 0; b < rows.Count; b++)
        {
            PackedRow row = rows[b];
            if (row.InputIds.Length != length)
                throw new ArgumentException($"Row {b} has {row.InputIds.Length} ids, row 0 has {length}.", nameof(rows));
            for (int i = 0; i < length; i++)
            {
                int k = b * length + i;
                ids[k] = row.InputIds[i];
                bool token = i < row.Length;
                labels[k] = token ? row.InputIds[i] : CorpusPacker.IgnoreIndex;
                mask[k] = token ? 1 : 0;
            }
        }
        long[] shape = [rows.Count, length];
        return new TrainingBatch(tensor(ids, shape, ScalarType.Int64), tensor(labels, shape, ScalarType.Int64), tensor(mask, shape, ScalarType.Int64),
            rowIndices ?? Enumerable.Range(0, rows.Count).ToArray());
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        InputIds.Dispose();
        Labels.Dispose();
        AttentionMask.Dispose();
    }
}
