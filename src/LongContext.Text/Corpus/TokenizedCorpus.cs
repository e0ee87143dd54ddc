using System.Buffers.Binary;
using LongContext.IO;

namespace LongContext.Text.Corpus;

/// <summary>
/// A tokenized corpus on disk: every document's ids (without special tokens) and where each document starts. The
/// file is LongContext's own: 8 bytes <c>LCTOKS01</c>, int64 document count D, int64 token count T, T uint32 ids,
/// D + 1 int64 offsets (little-endian). <see cref="Documents"/> streams one document at a time; only the offsets
/// (8 bytes a document) are held in memory.
/// </summary>
public sealed class TokenizedCorpus
{
    private static ReadOnlySpan<byte> Magic => "LCTOKS01"u8;
    private const int HeaderBytes = 24;
    private readonly long[] _offsets;

    private TokenizedCorpus(string path, long[] offsets)
    {
        Path = path;
        _offsets = offsets;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Number of documents.</summary>
    public int DocumentCount => _offsets.Length - 1;

    /// <summary>Number of tokens over all documents.</summary>
    public long TokenCount => _offsets[^1];

    /// <summary>Token count of one document.</summary>
    public long DocumentLength(int index) => _offsets[index + 1] - _offsets[index];

    /// <summary>Opens a file written by <see cref="Write"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not such a file or is inconsistent (named).</exception>
    public static TokenizedCorpus Open(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        using var stream = File.OpenRead(full);
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (stream.Length < HeaderBytes || stream.Read(header) != HeaderBytes || !header[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"'{full}' is not a LongContext tokenized corpus (no LCTOKS01 header).");
        long docs = BinaryPrimitives.ReadInt64LittleEndian(header[8..]), tokens = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        if (docs < 0 || tokens < 0 || docs > int.MaxValue - 1 || stream.Length != HeaderBytes + tokens * 4 + (docs + 1) * 8)
            throw new InvalidDataException($"'{full}': header says {docs} documents and {tokens} tokens, which does not match its {stream.Length} bytes.");
        stream.Position = HeaderBytes + tokens * 4;
        var raw = new byte[(docs + 1) * 8];
        stream.ReadExactly(raw);
        var offsets = new long[docs + 1];
        for (int i = 0; i < offsets.Length; i++) offsets[i] = BinaryPrimitives.ReadInt64LittleEndian(raw.AsSpan(i * 8));
        if (offsets[0] != 0 || offsets[^1] != tokens || offsets.Zip(offsets.Skip(1)).Any(p => p.Second < p.First))
            throw new InvalidDataException($"'{full}': document offsets are not increasing from 0 to {tokens}.");
        return new TokenizedCorpus(full, offsets);
    }

    /// <summary>Writes documents (ids without special tokens) atomically and opens the result.</summary>
    /// <param name="path">The file.</param>
    /// <param name="documents">Each document's ids, in order.</param>
    public static TokenizedCorpus Write(string path, IEnumerable<int[]> documents)
    {
        ArgumentNullException.ThrowIfNull(documents);
        AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[HeaderBytes]);
            var offsets = new List<long> { 0 };
            long tokens = 0;
            var buffer = new byte[1 << 16];
            foreach (int[] doc in documents)
            {
                int used = 0;
                foreach (int id in doc)
                {
                    if (id < 0) throw new ArgumentOutOfRangeException(nameof(documents), id, $"Token ids must be non-negative; document {offsets.Count - 1} has {id}.");
                    if (used + 4 > buffer.Length) { stream.Write(buffer, 0, used); used = 0; }
                    BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(used), (uint)id);
                    used += 4;
                }
                stream.Write(buffer, 0, used);
                tokens += doc.Length;
                offsets.Add(tokens);
            }
            foreach (long o in offsets)
            {
                BinaryPrimitives.WriteInt64LittleEndian(buffer, o);
                stream.Write(buffer, 0, 8);
            }
            Span<byte> header = stackalloc byte[HeaderBytes];
            Magic.CopyTo(header);
            BinaryPrimitives.WriteInt64LittleEndian(header[8..], offsets.Count - 1);
            BinaryPrimitives.WriteInt64LittleEndian(header[16..], tokens);
            stream.Position = 0;
            stream.Write(header);
        });
        return Open(path);
    }

    /// <summary>The documents' ids, one array per document, read sequentially.</summary>
    /// <exception cref="InvalidDataException">As the documents are read: an id above <see cref="int.MaxValue"/> (file, document and value named).</exception>
    public IEnumerable<int[]> Documents()
    {
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        stream.Position = HeaderBytes;
        byte[] bytes = [];
        for (int d = 0; d < DocumentCount; d++)
        {
            int n = checked((int)DocumentLength(d));
            if (bytes.Length < n * 4) bytes = new byte[n * 4];
            stream.ReadExactly(bytes, 0, n * 4);
            var ids = new int[n];
            for (int i = 0; i < n; i++)
            {
                uint id = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
                if (id > int.MaxValue)
                    throw new InvalidDataException($"'{Path}': document {d} holds token id {id} at position {i}, above {int.MaxValue} (the file is damaged; delete it to tokenize again).");
                ids[i] = (int)id;
            }
            yield return ids;
        }
    }
}
