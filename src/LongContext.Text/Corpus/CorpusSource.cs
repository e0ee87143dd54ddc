using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LongContext.Text.Corpus;

/// <summary>
/// A corpus read as a stream of documents: one document in memory at a time, however large the corpus.
/// <see cref="Identity"/> names the source's content for the tokenization cache.
/// </summary>
public abstract class CorpusSource
{
    /// <summary>A string that changes when the source's content may have changed (paths, sizes, modification times, fields).</summary>
    public abstract string Identity { get; }

    /// <summary>Total bytes of the source's files, for progress.</summary>
    public abstract long TotalBytes { get; }

    /// <summary>A short description for messages (the file or folder).</summary>
    public abstract string Description { get; }

    /// <summary>The documents, in a fixed order, read lazily.</summary>
    public abstract IEnumerable<CorpusDocument> Documents();

    /// <summary>Plain text: one file is one document; a folder contributes its matching files in ordinal path order.</summary>
    /// <param name="path">A file, or a folder searched recursively.</param>
    /// <param name="searchPattern">File pattern inside a folder; default <c>*.txt</c>.</param>
    /// <exception cref="FileNotFoundException">The path is neither a file nor a folder, or a folder holds no matching file.</exception>
    public static CorpusSource TextFiles(string path, string searchPattern = "*.txt") => new TextFilesSource(path, searchPattern);

    /// <summary>JSON Lines: each non-blank line an object whose string field <paramref name="field"/> is one document.</summary>
    /// <param name="path">A <c>.jsonl</c> file.</param>
    /// <param name="field">The field holding the text; default <c>text</c> (RedPajama, LongQLoRA's pretraining files).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static CorpusSource Jsonl(string path, string field = "text") => new JsonlSource(path, field);

    /// <summary>UTF-8 that refuses bytes it cannot decode instead of replacing them with U+FFFD (a binary or Latin-1 file is not silently garbled).</summary>
    private protected static readonly Encoding StrictUtf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The error of bytes of <paramref name="where"/> that are not UTF-8.</summary>
    private protected static InvalidDataException NotUtf8(string where, DecoderFallbackException e) =>
        new($"{where}: not UTF-8 text (bytes {string.Join(" ", (e.BytesUnknown ?? []).Select(b => b.ToString("X2", CultureInfo.InvariantCulture)))} " +
            "cannot be decoded); convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8).", e);

    private protected static string FileIdentity(string file)
    {
        var info = new FileInfo(file);
        return string.Create(CultureInfo.InvariantCulture, $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}");
    }
}

internal sealed class TextFilesSource : CorpusSource
{
    private readonly IReadOnlyList<string> _files;
    private readonly string _path;

    public TextFilesSource(string path, string searchPattern)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(searchPattern);
        _path = Path.GetFullPath(path);
        if (File.Exists(_path)) _files = [_path];
        else if (Directory.Exists(_path))
        {
            _files = Directory.EnumerateFiles(_path, searchPattern, SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
            if (_files.Count == 0) throw new FileNotFoundException($"Folder '{_path}' holds no file matching '{searchPattern}'.", _path);
        }
        else throw new FileNotFoundException($"Corpus path '{_path}' is neither a file nor a folder.", _path);
    }

    public override string Identity => "text|" + string.Join(";", _files.Select(FileIdentity));
    public override long TotalBytes => _files.Sum(f => new FileInfo(f).Length);
    public override string Description => _path;

    public override IEnumerable<CorpusDocument> Documents()
    {
        foreach (string file in _files)
            yield return new CorpusDocument(Read(file), file, new FileInfo(file).Length);
    }

    private static string Read(string file)
    {
        try
        {
            return File.ReadAllText(file, StrictUtf8);
        }
        catch (DecoderFallbackException e)
        {
            throw NotUtf8($"'{file}'", e);
        }
    }
}

internal sealed class JsonlSource : CorpusSource
{
    private readonly string _path;
    private readonly string _field;

    public JsonlSource(string path, string field)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(field);
        _path = Path.GetFullPath(path);
        _field = field;
        if (!File.Exists(_path)) throw new FileNotFoundException($"JSONL file '{_path}' does not exist.", _path);
    }

    public override string Identity => $"jsonl|{_field}|{FileIdentity(_path)}";
    public override long TotalBytes => new FileInfo(_path).Length;
    public override string Description => _path;

    public override IEnumerable<CorpusDocument> Documents()
    {
        using var reader = new StreamReader(_path, StrictUtf8);
        long lineNumber = 0;
        while (ReadLine(reader, lineNumber + 1) is { } line)
        {
            lineNumber++;
            long bytes = Encoding.UTF8.GetByteCount(line) + 1;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string origin = $"{_path}:{lineNumber}";
            string text;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{origin}: each line must be a JSON object; got a {doc.RootElement.ValueKind}.");
                if (!doc.RootElement.TryGetProperty(_field, out JsonElement value))
                    throw new InvalidDataException($"{origin}: the object has no field '{_field}'.");
                text = value.ValueKind == JsonValueKind.String
                    ? value.GetString()!
                    : throw new InvalidDataException($"{origin}: field '{_field}' must be a string; got a {value.ValueKind}.");
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{origin}: not valid JSON: {e.Message}", e);
            }
            yield return new CorpusDocument(text, origin, bytes);
        }
    }

    private string? ReadLine(StreamReader reader, long lineNumber)
    {
        try
        {
            return reader.ReadLine();
        }
        catch (DecoderFallbackException e)
        {
            throw NotUtf8($"{_path}:{lineNumber}", e);   // the decoder reads ahead: the bad bytes are on this line or a later one
        }
    }
}
