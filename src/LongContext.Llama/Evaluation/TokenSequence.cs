using System.IO.MemoryMappedFiles;
using LongContext.Text.Corpus;

namespace LongContext.Llama.Evaluation;

/// <summary>
/// A read-only stream of token ids for perplexity: an in-memory array, or a raw token file (the format of
/// LongContext.Text's <see cref="TokenFile"/>) read through a memory mapping, so windows are read at any offset and
/// memory does not grow with the file. Reads are checked against the vocabulary, naming the source, the
/// index and the value.
/// </summary>
public sealed class TokenSequence : IDisposable
{
    private readonly long[]? array;
    private readonly MemoryMappedFile? file;
    private readonly MemoryMappedViewAccessor? view;
    private readonly int elementSize;

    private TokenSequence(string source, long[] tokens)
    {
        Source = source;
        array = tokens;
        Count = tokens.LongLength;
    }

    private TokenSequence(string path, TokenFileFormat format, long bytes)
    {
        Source = path;
        elementSize = TokenFile.ElementSize(format);
        Count = bytes / elementSize;
        file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = file.CreateViewAccessor(0, bytes, MemoryMappedFileAccess.Read);
    }

    /// <summary>Where the tokens come from (a file path, or "array"), for messages.</summary>
    public string Source { get; }

    /// <summary>Number of tokens.</summary>
    public long Count { get; }

    /// <summary>Wraps ids held in memory (copied).</summary>
    /// <param name="tokens">Token ids, at least one.</param>
    /// <exception cref="ArgumentException">The list is empty or holds a negative id.</exception>
    public static TokenSequence FromArray(IReadOnlyList<long> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count == 0) throw new ArgumentException("the token list is empty; expected at least one token.", nameof(tokens));
        long[] copy = tokens.ToArray();
        for (int i = 0; i < copy.Length; i++)
            if (copy[i] < 0) throw new ArgumentException($"tokens[{i}] = {copy[i]} is negative; token ids are non-negative.", nameof(tokens));
        return new TokenSequence("array", copy);
    }

    /// <summary>Opens a raw token file (LongLoRA's <c>.bin</c> files are <see cref="TokenFileFormat.UInt16"/>).</summary>
    /// <param name="path">The file.</param>
    /// <param name="format">Bytes per id.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is empty or its size is not a multiple of the id size.</exception>
    public static TokenSequence FromFile(string path, TokenFileFormat format = TokenFileFormat.UInt16)
    {
        ArgumentNullException.ThrowIfNull(path);
        long count = TokenFile.Count(path, format);                 // exists, length a multiple of the id size
        if (count == 0) throw new InvalidDataException($"token file '{Path.GetFullPath(path)}' is empty; expected {format} token ids.");
        return new TokenSequence(Path.GetFullPath(path), format, count * TokenFile.ElementSize(format));
    }

    /// <summary>Tokens [start, start + count), each checked to lie in [0, vocabSize).</summary>
    /// <param name="start">First index.</param>
    /// <param name="count">Tokens to read.</param>
    /// <param name="vocabSize">Vocabulary size of the model the tokens feed.</param>
    /// <exception cref="ArgumentOutOfRangeException">The range leaves the sequence.</exception>
    /// <exception cref="InvalidDataException">A token id is outside the vocabulary.</exception>
    public long[] Read(long start, int count, long vocabSize)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, $"{nameof(count)} must be non-negative; got {count}.");
        if (start < 0 || start > Count - count)   // not start + count: it overflows for a start near long.MaxValue
            throw new ArgumentOutOfRangeException(nameof(start), start, $"tokens [{start}, {start} + {count}) leave '{Source}' of {Count} tokens.");
        var result = new long[count];
        if (array is not null) Array.Copy(array, start, result, 0, count);
        else if (elementSize == 2)
        {
            var buffer = new ushort[count];
            view!.ReadArray(start * 2, buffer, 0, count);
            for (int i = 0; i < count; i++) result[i] = buffer[i];
        }
        else
        {
            var buffer = new uint[count];
            view!.ReadArray(start * 4, buffer, 0, count);
            for (int i = 0; i < count; i++) result[i] = buffer[i];
        }
        for (int i = 0; i < count; i++)
            if (result[i] >= vocabSize)
                throw new InvalidDataException($"token {start + i} of '{Source}' is id {result[i]}, outside the model's vocabulary [0, {vocabSize}).");
        return result;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        view?.Dispose();
        file?.Dispose();
    }
}
