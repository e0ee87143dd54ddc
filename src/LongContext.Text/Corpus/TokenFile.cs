using System.Buffers.Binary;
using LongContext.IO;

namespace LongContext.Text.Corpus;

/// <summary>Element type of a token file.</summary>
public enum TokenFileFormat
{
    /// <summary>Little-endian uint16, as LongLoRA's PG19 / proof-pile files (<c>np.memmap(path, dtype=np.uint16)</c>); ids below 65536.</summary>
    UInt16,

    /// <summary>Little-endian uint32, for vocabularies of 65536 ids or more (Llama-3's 128k).</summary>
    UInt32,
}

/// <summary>
/// Raw token files: ids one after another, little-endian, no header, no document boundaries: the format of
/// LongLoRA's evaluation files, which <c>eval.py</c> opens as <c>np.memmap(data_path, dtype=np.uint16, mode='r')</c>
/// (so the file length is a multiple of the element size and the token count is length / size). Read in chunks, so
/// memory does not grow with the file; written atomically.
/// </summary>
public static class TokenFile
{
    /// <summary>Bytes per token of a format.</summary>
    public static int ElementSize(TokenFileFormat format) => format switch
    {
        TokenFileFormat.UInt16 => 2,
        TokenFileFormat.UInt32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, $"{nameof(format)} must be UInt16 or UInt32; got {format}."),
    };

    /// <summary>Number of tokens in a file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Its length is not a multiple of the element size.</exception>
    public static long Count(string path, TokenFileFormat format)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int size = ElementSize(format);
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"Token file '{info.FullName}' does not exist.", info.FullName);
        if (info.Length % size != 0)
            throw new InvalidDataException($"Token file '{info.FullName}' has {info.Length} bytes, not a multiple of {size} ({format}); wrong format?");
        return info.Length / size;
    }

    /// <summary>Reads the ids in chunks of at most <paramref name="chunkTokens"/>, checking each against the vocabulary.</summary>
    /// <param name="path">The file.</param>
    /// <param name="format">Its element type.</param>
    /// <param name="vocabSize">Ids must be below this (the tokenizer's <c>VocabSize</c>).</param>
    /// <param name="chunkTokens">Tokens per chunk; positive.</param>
    /// <exception cref="InvalidDataException">An id is not below <paramref name="vocabSize"/> (file, position, value and limit named), or the length is wrong.</exception>
    public static IEnumerable<int[]> Read(string path, TokenFileFormat format, int vocabSize, int chunkTokens = 1 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkTokens);
        long total = Count(path, format);
        return ReadChunks(Path.GetFullPath(path), format, vocabSize, chunkTokens, total);
    }

    private static IEnumerable<int[]> ReadChunks(string path, TokenFileFormat format, int vocabSize, int chunkTokens, long total)
    {
        int size = ElementSize(format);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var bytes = new byte[(long)chunkTokens * size];
        long position = 0;
        while (position < total)
        {
            int n = (int)Math.Min(chunkTokens, total - position);
            stream.ReadExactly(bytes, 0, n * size);
            var ids = new int[n];
            for (int i = 0; i < n; i++)
            {
                uint id = format == TokenFileFormat.UInt16
                    ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2))
                    : BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
                if (id >= (uint)vocabSize)
                    throw new InvalidDataException(
                        $"Token file '{path}': token {position + i} (byte offset {(position + i) * size}) is {id}, outside the vocabulary [0, {vocabSize}).");
                ids[i] = (int)id;
            }
            position += n;
            yield return ids;
        }
    }

    /// <summary>Reads the whole file into one array (evaluation files are a few million tokens).</summary>
    /// <inheritdoc cref="Read" path="/exception"/>
    public static int[] ReadAll(string path, TokenFileFormat format, int vocabSize)
    {
        long count = Count(path, format);
        if (count > Array.MaxLength) throw new InvalidDataException($"Token file '{path}' has {count} tokens, more than one array holds; use Read.");
        var all = new int[count];
        int at = 0;
        foreach (int[] chunk in Read(path, format, vocabSize))
        {
            chunk.CopyTo(all, at);
            at += chunk.Length;
        }
        return all;
    }

    /// <summary>Writes ids as a token file, atomically (a temporary file renamed into place).</summary>
    /// <param name="path">The file to write (replaced if it exists).</param>
    /// <param name="chunks">The ids, in order, in any chunking.</param>
    /// <param name="format">The element type.</param>
    /// <returns>The number of tokens written.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or does not fit the format (position and value named); nothing is written.</exception>
    public static long Write(string path, IEnumerable<int[]> chunks, TokenFileFormat format)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        int size = ElementSize(format);
        long max = format == TokenFileFormat.UInt16 ? ushort.MaxValue : uint.MaxValue;
        long written = 0;
        AtomicFile.Write(path, stream =>
        {
            var buffer = new byte[1 << 16];
            int used = 0;
            foreach (int[] chunk in chunks)
            {
                foreach (int id in chunk)
                {
                    if (id < 0 || id > max)
                        throw new ArgumentOutOfRangeException(nameof(chunks), id, $"Token {written} is {id}, which {format} cannot hold (0..{max}).");
                    if (used + size > buffer.Length) { stream.Write(buffer, 0, used); used = 0; }
                    if (format == TokenFileFormat.UInt16) BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(used), (ushort)id);
                    else BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(used), (uint)id);
                    used += size;
                    written++;
                }
            }
            stream.Write(buffer, 0, used);
        });
        return written;
    }

    /// <summary>Writes one array of ids (see <see cref="Write(string, IEnumerable{int[]}, TokenFileFormat)"/>).</summary>
    public static long Write(string path, int[] ids, TokenFileFormat format) => Write(path, [ids], format);
}
