using System.Buffers.Binary;
using LongContext.IO;

namespace LongContext.Text.Corpus;

/// <summary>
/// Packed training rows on disk, read by row index, so a shuffled pass over a large corpus holds one batch in
/// memory. File layout (LongContext's own, little-endian): 8 bytes <c>LCROWS01</c>, int64 row count, int32 L, then
/// per row an int32 token count and L int32 ids. Written atomically.
/// </summary>
public sealed class PackedRows
{
    private static ReadOnlySpan<byte> Magic => "LCROWS01"u8;
    private const int HeaderBytes = 20;

    private PackedRows(string path, int count, int rowLength)
    {
        Path = path;
        Count = count;
        RowLength = rowLength;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Number of rows.</summary>
    public int Count { get; }

    /// <summary>Tokens per row, L.</summary>
    public int RowLength { get; }

    private long RowBytes => 4L + 4L * RowLength;

    /// <summary>Writes rows atomically and opens the file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="rows">Rows of L ids each.</param>
    /// <param name="rowLength">L.</param>
    /// <param name="sourceDescription">The corpus, named in the error when it yields no row.</param>
    /// <exception cref="InvalidDataException">There is no row (an empty corpus); nothing is written.</exception>
    public static PackedRows Write(string path, IEnumerable<PackedRow> rows, int rowLength, string sourceDescription)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 2);
        long count = 0;
        AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[HeaderBytes]);
            var buffer = new byte[4 + 4 * rowLength];
            foreach (PackedRow row in rows)
            {
                if (row.InputIds.Length != rowLength || row.Length < 1 || row.Length > rowLength)
                    throw new ArgumentException($"Row {count} has {row.InputIds.Length} ids and length {row.Length}; expected {rowLength} ids and a length in 1..{rowLength}.", nameof(rows));
                if (Array.FindIndex(row.InputIds, id => id < 0) is int negative and >= 0)
                    throw new ArgumentException($"Row {count} holds token id {row.InputIds[negative]} at position {negative}; ids are non-negative.", nameof(rows));
                BinaryPrimitives.WriteInt32LittleEndian(buffer, row.Length);
                for (int i = 0; i < rowLength; i++) BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(4 + 4 * i), row.InputIds[i]);
                stream.Write(buffer);
                count++;
            }
            if (count == 0) throw new InvalidDataException($"Corpus '{sourceDescription}' gives no training rows: it holds no tokens.");
            if (count > int.MaxValue) throw new InvalidDataException($"Corpus '{sourceDescription}' gives {count} rows, more than {int.MaxValue}.");
            Span<byte> header = stackalloc byte[HeaderBytes];
            Magic.CopyTo(header);
            BinaryPrimitives.WriteInt64LittleEndian(header[8..], count);
            BinaryPrimitives.WriteInt32LittleEndian(header[16..], rowLength);
            stream.Position = 0;
            stream.Write(header);
        });
        return Open(path);
    }

    /// <summary>Opens a file written by <see cref="Write"/>.</summary>
    /// <exception cref="InvalidDataException">Not such a file, or its size does not match its header.</exception>
    public static PackedRows Open(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        using var stream = File.OpenRead(full);
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (stream.Length < HeaderBytes || stream.Read(header) != HeaderBytes || !header[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"'{full}' is not a LongContext rows file (no LCROWS01 header).");
        long count = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        int length = BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        if (count < 1 || count > int.MaxValue || length < 2 || stream.Length != HeaderBytes + count * (4L + 4L * length))
            throw new InvalidDataException($"'{full}': header says {count} rows of {length}, which does not match its {stream.Length} bytes.");
        return new PackedRows(full, (int)count, length);
    }

    /// <summary>Reads one row.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside [0, <see cref="Count"/>).</exception>
    /// <exception cref="InvalidDataException">The row's token count is outside 1..L or it holds a negative id (file, row and value named).</exception>
    public PackedRow ReadRow(int index)
    {
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.RandomAccess);
        return ReadRow(stream, index, new byte[RowBytes]);
    }

    private PackedRow ReadRow(FileStream stream, int index, byte[] buffer)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"Row index must be in [0, {Count}); got {index}.");
        stream.Position = HeaderBytes + index * RowBytes;
        stream.ReadExactly(buffer, 0, (int)RowBytes);
        int length = BinaryPrimitives.ReadInt32LittleEndian(buffer);
        if (length < 1 || length > RowLength)
            throw new InvalidDataException($"'{Path}': row {index} has token count {length}; a row holds 1..{RowLength} tokens (the file is damaged).");
        var ids = new int[RowLength];
        for (int i = 0; i < RowLength; i++)
        {
            int id = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(4 + 4 * i));
            if (id < 0) throw new InvalidDataException($"'{Path}': row {index} holds token id {id} at position {i}; ids are non-negative (the file is damaged).");
            ids[i] = id;
        }
        return new PackedRow(ids, length);
    }

    /// <summary>
    /// The rows in batches of <paramref name="batchSize"/>: in file order, or, with a seed, in the order of
    /// <see cref="SeededShuffle.Permutation"/> of (seed, epoch), the same on every run. The last batch may be smaller
    /// unless <paramref name="dropLast"/>. Each batch is new tensors: dispose it.
    /// </summary>
    /// <param name="batchSize">Rows per batch, B; positive.</param>
    /// <param name="seed">Shuffle seed, or null for file order.</param>
    /// <param name="epoch">Mixed into the seed so each epoch has its own order.</param>
    /// <param name="dropLast">Skip a last batch smaller than B.</param>
    public IEnumerable<TrainingBatch> Batches(int batchSize, ulong? seed = null, int epoch = 0, bool dropLast = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        int[] order = seed is { } s
            ? SeededShuffle.Permutation(Count, s ^ (0xD1B54A32D192ED03UL * (ulong)(epoch + 1)))
            : Enumerable.Range(0, Count).ToArray();
        return BatchesInOrder(order, batchSize, dropLast);
    }

    private IEnumerable<TrainingBatch> BatchesInOrder(int[] order, int batchSize, bool dropLast)
    {
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        var buffer = new byte[RowBytes];
        for (int start = 0; start < order.Length; start += batchSize)
        {
            int n = Math.Min(batchSize, order.Length - start);
            if (n < batchSize && dropLast) yield break;
            var indices = order.AsSpan(start, n).ToArray();
            var rows = indices.Select(i => ReadRow(stream, i, buffer)).ToList();
            yield return TrainingBatch.FromRows(rows, indices);
        }
    }
}
