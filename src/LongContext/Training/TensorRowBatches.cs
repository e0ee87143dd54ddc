using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// Training rows held in memory, (R, L) token ids and optional labels (default: the ids), served in order as
/// micro-batches of <c>batchSize</c> rows, wrapping around at the end. The cursor is the index of the next row.
/// </summary>
public sealed class TensorRowBatches : ITrainingBatches, IDisposable
{
    private const string CursorPrefix = "row=";
    private readonly Tensor ids;
    private readonly Tensor labels;
    private readonly int batchSize;
    private long next;

    /// <summary>Wraps rows (copied).</summary>
    /// <param name="inputIds">Token ids (R, L), integer.</param>
    /// <param name="labels">Labels (R, L) (-100 where not scored), or null to use the ids.</param>
    /// <param name="batchSize">Rows per micro-batch, in [1, R].</param>
    /// <exception cref="ArgumentException">Shapes that do not fit or an empty row set.</exception>
    public TensorRowBatches(Tensor inputIds, Tensor? labels = null, int batchSize = 1)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2 || inputIds.size(0) == 0 || inputIds.size(1) < 2)
            throw new ArgumentException($"{nameof(inputIds)} must be (rows, L) with at least one row and L >= 2; got shape [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        if (labels is not null && !labels.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"{nameof(labels)} shape [{string.Join(", ", labels.shape)}] must equal the ids' [{string.Join(", ", inputIds.shape)}].", nameof(labels));
        foreach (var (tensor, name) in new[] { (inputIds, nameof(inputIds)), (labels, nameof(labels)) })
            if (tensor is not null && (tensor.is_floating_point() || tensor.is_complex() || tensor.dtype == ScalarType.Bool))
                throw new ArgumentException($"{name} must hold integer token ids (int64 or another integer type); got {tensor.dtype}.", name);
        if (batchSize < 1 || batchSize > inputIds.size(0))
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"{nameof(batchSize)} must be in [1, {inputIds.size(0)}] (the rows); got {batchSize}.");
        ids = inputIds.to(ScalarType.Int64).clone().DetachFromDisposeScope();
        this.labels = (labels ?? inputIds).to(ScalarType.Int64).clone().DetachFromDisposeScope();
        this.batchSize = batchSize;
    }

    /// <summary>Rows available.</summary>
    public long Rows => ids.size(0);

    /// <summary>Tokens per row.</summary>
    public long RowLength => ids.size(1);

    /// <inheritdoc />
    public string Cursor => string.Create(CultureInfo.InvariantCulture, $"{CursorPrefix}{next}");

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">
    /// The row counter would pass <see cref="long.MaxValue"/> (only after a <see cref="Seek"/> to within a batch or two
    /// of it); nothing is served and the position is unchanged.
    /// </exception>
    public (Tensor InputIds, Tensor Labels) Next()
    {
        if (!TryAdvance(next, out long after))
            throw new InvalidOperationException(
                $"{nameof(TensorRowBatches)}: the row counter is at {next}; another batch of {batchSize} rows would pass long.MaxValue ({long.MaxValue}).");
        var index = torch.tensor(Enumerable.Range(0, batchSize).Select(i => (next + i) % Rows).ToArray(), dtype: ScalarType.Int64);
        next = after;
        var result = (ids.index_select(0, index), labels.index_select(0, index));
        index.Dispose();
        return result;
    }

    /// <summary>Continues from a position <see cref="Cursor"/> gave: the next batch starts at row N (modulo the rows).</summary>
    /// <param name="cursor">
    /// <c>row=N</c>, N a non-negative decimal integer (ASCII digits only, no sign or spaces) with N + the batch size at
    /// most <see cref="long.MaxValue"/>, so the next batch can be counted.
    /// </param>
    /// <exception cref="ArgumentNullException"><paramref name="cursor"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="cursor"/> is not <c>row=N</c>, or N is so large that the next batch would overflow the row counter; the position is unchanged.</exception>
    public void Seek(string cursor)
    {
        ArgumentNullException.ThrowIfNull(cursor);
        if (!cursor.StartsWith(CursorPrefix, StringComparison.Ordinal)
            || !long.TryParse(cursor.AsSpan(CursorPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long row))
            throw new ArgumentException(
                $"cursor '{cursor}' is not a {nameof(TensorRowBatches)} cursor: expected {CursorPrefix}N with N a non-negative decimal integer (the next row), as {nameof(Cursor)} gives.",
                nameof(cursor));
        if (!TryAdvance(row, out _))
            throw new ArgumentException(
                $"cursor '{cursor}' is out of range for {nameof(TensorRowBatches)}: N + the batch size ({batchSize}) must be at most long.MaxValue ({long.MaxValue}), or the next batch would overflow the row counter.",
                nameof(cursor));
        next = row;
    }

    /// <summary>The row counter after one more batch from <paramref name="row"/>; false when it would overflow.</summary>
    private bool TryAdvance(long row, out long after)
    {
        bool fits = row <= long.MaxValue - batchSize;      // batchSize is positive, so the subtraction cannot overflow
        after = fits ? row + batchSize : 0;
        return fits;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        ids.Dispose();
        labels.Dispose();
    }
}
