using System.Security.Cryptography;
using System.Text;
using LongContext.Text.Tokenization;

namespace LongContext.Text.Corpus;

/// <summary>Progress of <see cref="CorpusTokenizer.Tokenize"/>, reported after each batch of documents.</summary>
/// <param name="Documents">Documents tokenized so far.</param>
/// <param name="Tokens">Tokens produced so far.</param>
/// <param name="BytesRead">Source bytes consumed so far.</param>
/// <param name="TotalBytes">Source bytes in all (<see cref="CorpusSource.TotalBytes"/>): BytesRead / TotalBytes is the fraction done.</param>
/// <param name="FromCache">True when the result was found in the cache (reported once, complete).</param>
public sealed record TokenizationProgress(long Documents, long Tokens, long BytesRead, long TotalBytes, bool FromCache);

/// <summary>Options of <see cref="CorpusTokenizer.Tokenize"/>, validated as they are set.</summary>
public sealed record TokenizationOptions
{
    private readonly string _cacheDirectory = Path.Combine(Path.GetTempPath(), "longcontext-token-cache");
    private readonly int _parallelism = Environment.ProcessorCount;
    private readonly int _batchDocuments = 256;
    private readonly string? _tokenizerKey;

    /// <summary>Folder of cached tokenized corpora (created when needed). Default: <c>longcontext-token-cache</c> in the temp folder.</summary>
    /// <exception cref="ArgumentException">Empty.</exception>
    public string CacheDirectory
    {
        get => _cacheDirectory;
        init => _cacheDirectory = !string.IsNullOrWhiteSpace(value) ? value : throw new ArgumentException($"{nameof(CacheDirectory)} must be a folder path; got '{value}'.", nameof(CacheDirectory));
    }

    /// <summary>Documents tokenized at once; default the processor count. Positive.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative.</exception>
    public int MaxDegreeOfParallelism
    {
        get => _parallelism;
        init => _parallelism = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(MaxDegreeOfParallelism), value, $"{nameof(MaxDegreeOfParallelism)} must be positive; got {value}.");
    }

    /// <summary>Documents read ahead per parallel batch (bounds memory); default 256. Positive.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative.</exception>
    public int BatchDocuments
    {
        get => _batchDocuments;
        init => _batchDocuments = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(BatchDocuments), value, $"{nameof(BatchDocuments)} must be positive; got {value}.");
    }

    /// <summary>
    /// What identifies the tokenizer in the cache key. Null (default) takes <see cref="HfTokenizer.Fingerprint"/>;
    /// required for other <see cref="ITextTokenizer"/> implementations.
    /// </summary>
    /// <exception cref="ArgumentException">Empty.</exception>
    public string? TokenizerKey
    {
        get => _tokenizerKey;
        init => _tokenizerKey = value is null || !string.IsNullOrWhiteSpace(value) ? value : throw new ArgumentException($"{nameof(TokenizerKey)} must be null or non-empty.", nameof(TokenizerKey));
    }
}

/// <summary>
/// Tokenizes a corpus source into a <see cref="TokenizedCorpus"/> (ids without special tokens; packing adds BOS/EOS),
/// in parallel batches written in source order, cached on disk under a key of the tokenizer and the source's
/// identity (paths, sizes, modification times, JSONL field): a second call with the same inputs opens the cached
/// file. Cache files are written atomically (temporary file + rename), so an interrupted run leaves no entry.
/// </summary>
public static class CorpusTokenizer
{
    /// <summary>Tokenizes (or opens the cached tokenization of) a source.</summary>
    /// <param name="source">The documents.</param>
    /// <param name="tokenizer">The tokenizer (thread-safe, as every <see cref="ITextTokenizer"/> is).</param>
    /// <param name="options">Cache folder, parallelism; defaults if null.</param>
    /// <param name="progress">Receives progress after each batch (turn it into a progress bar).</param>
    /// <param name="cancellationToken">Stops between batches; the cache is left without the entry.</param>
    /// <exception cref="InvalidDataException">The corpus holds no document or no token (the source named).</exception>
    /// <exception cref="ArgumentException">The tokenizer is not an <see cref="HfTokenizer"/> and no <see cref="TokenizationOptions.TokenizerKey"/> is given.</exception>
    public static TokenizedCorpus Tokenize(CorpusSource source, ITextTokenizer tokenizer, TokenizationOptions? options = null,
        IProgress<TokenizationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options ??= new TokenizationOptions();
        string tokenizerKey = options.TokenizerKey ?? (tokenizer as HfTokenizer)?.Fingerprint
            ?? throw new ArgumentException($"Caching needs {nameof(TokenizationOptions)}.{nameof(TokenizationOptions.TokenizerKey)} for a tokenizer of type {tokenizer.GetType().Name}.", nameof(options));
        string path = CachePath(options.CacheDirectory, tokenizerKey, source.Identity);
        if (File.Exists(path))
        {
            var cached = TokenizedCorpus.Open(path);
            progress?.Report(new TokenizationProgress(cached.DocumentCount, cached.TokenCount, source.TotalBytes, source.TotalBytes, FromCache: true));
            return cached;
        }
        long total = source.TotalBytes;
        var corpus = TokenizedCorpus.Write(path, Encode(source, tokenizer, options, total, progress, cancellationToken));
        if (corpus.DocumentCount == 0 || corpus.TokenCount == 0)
        {
            File.Delete(path);
            throw new InvalidDataException(corpus.DocumentCount == 0
                ? $"Corpus '{source.Description}' holds no documents."
                : $"Corpus '{source.Description}' holds {corpus.DocumentCount} document(s) but no tokens (every document is empty).");
        }
        return corpus;
    }

    /// <summary>The cache file of a tokenizer key and a source identity.</summary>
    internal static string CachePath(string directory, string tokenizerKey, string sourceIdentity)
    {
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes($"LCTOKS01\n{tokenizerKey}\n{sourceIdentity}"));
        return Path.Combine(Path.GetFullPath(directory), Convert.ToHexString(hash).ToLowerInvariant() + ".lctoks");
    }

    private static IEnumerable<int[]> Encode(CorpusSource source, ITextTokenizer tokenizer, TokenizationOptions options, long total,
        IProgress<TokenizationProgress>? progress, CancellationToken ct)
    {
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism, CancellationToken = ct };
        var batch = new List<CorpusDocument>(options.BatchDocuments);
        long documents = 0, tokens = 0, bytes = 0;
        using var enumerator = source.Documents().GetEnumerator();
        bool more = true;
        while (more)
        {
            ct.ThrowIfCancellationRequested();
            batch.Clear();
            while (batch.Count < options.BatchDocuments && (more = enumerator.MoveNext())) batch.Add(enumerator.Current);
            if (batch.Count == 0) break;
            var encoded = new int[batch.Count][];
            Parallel.For(0, batch.Count, parallel, i =>
            {
                try
                {
                    encoded[i] = tokenizer.Encode(batch[i].Text, addSpecialTokens: false);
                }
                catch (ArgumentException e)
                {
                    throw new InvalidDataException($"{batch[i].Origin}: cannot be tokenized: {e.Message}", e);
                }
            });
            foreach ((int[] ids, CorpusDocument doc) in encoded.Zip(batch))
            {
                documents++;
                tokens += ids.Length;
                bytes += doc.SourceBytes;
                yield return ids;
            }
            progress?.Report(new TokenizationProgress(documents, tokens, Math.Min(bytes, total), total, FromCache: false));
        }
    }
}
