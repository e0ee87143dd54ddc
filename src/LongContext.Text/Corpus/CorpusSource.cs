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
    /// <param name="searchPattern">
    /// The files to read, as <see cref="Directory.EnumerateFiles(string, string, SearchOption)"/> matches them. Null
    /// (default): <c>*.txt</c> inside a folder; a file given as <paramref name="path"/> is read whatever its name.
    /// A pattern given with a file must match the file's name, as it would in a search of the file's folder: one it
    /// does not match is a conflict, refused rather than either input dropped silently.
    /// </param>
    /// <exception cref="FileNotFoundException">The path is neither a file nor a folder, or a folder holds no matching file.</exception>
    /// <exception cref="ArgumentException"><paramref name="searchPattern"/> is empty, or is given with a file it does not match (both named).</exception>
    /// <exception cref="InvalidDataException">As the documents are read: a file that is not UTF-8 (a UTF-8 byte-order mark is
    /// skipped; a UTF-16 or UTF-32 one is refused, named).</exception>
    public static CorpusSource TextFiles(string path, string? searchPattern = null) => new TextFilesSource(path, searchPattern);

    /// <summary>
    /// JSON Lines: each non-blank line an object whose string field <paramref name="field"/> is one document. Lines end
    /// with LF, CRLF or CR. Each document's <see cref="CorpusDocument.SourceBytes"/> is its line with its line break and
    /// the blank lines after it (the first document's also those before it and a UTF-8 byte-order mark), so the
    /// documents' bytes add up to the file's length.
    /// </summary>
    /// <param name="path">A <c>.jsonl</c> file.</param>
    /// <param name="field">The field holding the text; default <c>text</c> (RedPajama, LongQLoRA's pretraining files).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">As the documents are read: a line that is not a JSON object with the field, or
    /// a file that is not UTF-8 (a UTF-16 or UTF-32 byte-order mark is refused, named).</exception>
    public static CorpusSource Jsonl(string path, string field = "text") => new JsonlSource(path, field);

    /// <summary>UTF-8 that refuses bytes it cannot decode instead of replacing them with U+FFFD (a binary or Latin-1 file is not silently garbled).</summary>
    private protected static readonly Encoding StrictUtf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The error of bytes of <paramref name="where"/> that are not UTF-8.</summary>
    private protected static InvalidDataException NotUtf8(string where, DecoderFallbackException e) =>
        new($"{where}: not UTF-8 text (bytes {string.Join(" ", (e.BytesUnknown ?? []).Select(b => b.ToString("X2", CultureInfo.InvariantCulture)))} " +
            "cannot be decoded); convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8).", e);

    /// <summary>
    /// Opens <paramref name="file"/> as UTF-8 text past its UTF-8 byte-order mark, if any (<paramref name="preamble"/>:
    /// its 3 bytes, or 0). A UTF-16 or UTF-32 byte-order mark is refused: a corpus is read as UTF-8, as HF datasets read
    /// text files, and a reader that followed the mark would count the file's bytes wrongly.
    /// </summary>
    /// <exception cref="InvalidDataException">The file starts with a UTF-16 or UTF-32 byte-order mark (named, with the file).</exception>
    private protected static StreamReader OpenUtf8(string file, out int preamble)
    {
        var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            Span<byte> start = stackalloc byte[4];
            int n = stream.ReadAtLeast(start, 4, throwOnEndOfStream: false);
            ReadOnlySpan<byte> head = start[..n];
            (string Name, int Length)? foreign = head switch
            {
                [0xFF, 0xFE, 0x00, 0x00, ..] => ("UTF-32 LE", 4),
                [0x00, 0x00, 0xFE, 0xFF, ..] => ("UTF-32 BE", 4),
                [0xFF, 0xFE, ..] => ("UTF-16 LE", 2),
                [0xFE, 0xFF, ..] => ("UTF-16 BE", 2),
                _ => null,
            };
            if (foreign is var (name, length))
                throw new InvalidDataException(
                    $"'{file}': starts with a {name} byte-order mark ({BitConverter.ToString(head[..length].ToArray()).Replace('-', ' ')}); " +
                    "corpora are read as UTF-8: convert the file (e.g. iconv -f utf-16 -t utf-8).");
            preamble = head is [0xEF, 0xBB, 0xBF, ..] ? 3 : 0;
            stream.Position = preamble;
            return new StreamReader(stream, StrictUtf8, detectEncodingFromByteOrderMarks: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private protected static string FileIdentity(string file)
    {
        var info = new FileInfo(file);
        return string.Create(CultureInfo.InvariantCulture, $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}");
    }
}

internal sealed class TextFilesSource : CorpusSource
{
    private const string DefaultPattern = "*.txt";
    private readonly IReadOnlyList<string> _files;
    private readonly string _path;

    public TextFilesSource(string path, string? searchPattern)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (searchPattern is not null) ArgumentException.ThrowIfNullOrEmpty(searchPattern);
        _path = Path.GetFullPath(path);
        if (File.Exists(_path))
        {
            if (searchPattern is not null && !Matches(_path, searchPattern))
                throw new ArgumentException(
                    $"The corpus path '{_path}' is a file whose name does not match the search pattern '{searchPattern}'; pass no pattern to read this file, " +
                    "or a folder to search with the pattern.", nameof(searchPattern));
            _files = [_path];
        }
        else if (Directory.Exists(_path))
        {
            searchPattern ??= DefaultPattern;
            _files = Directory.EnumerateFiles(_path, searchPattern, SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
            if (_files.Count == 0) throw new FileNotFoundException($"Folder '{_path}' holds no file matching '{searchPattern}'.", _path);
        }
        else throw new FileNotFoundException($"Corpus path '{_path}' is neither a file nor a folder.", _path);
    }

    /// <summary>
    /// Whether a folder search with <paramref name="pattern"/> finds <paramref name="file"/>: the search's own matching,
    /// run on the file's folder (a pattern with a folder part that does not exist there finds nothing).
    /// </summary>
    private static bool Matches(string file, string pattern)
    {
        try
        {
            return Directory.EnumerateFiles(Path.GetDirectoryName(file)!, pattern, SearchOption.TopDirectoryOnly)
                .Any(f => string.Equals(Path.GetFullPath(f), file, StringComparison.Ordinal));
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
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
            using StreamReader reader = OpenUtf8(file, out _);
            return reader.ReadToEnd();
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

    /// <summary>
    /// The documents, each with the bytes of the file it took: its line and line break, the blank lines after it (those
    /// before the first document and a UTF-8 byte-order mark with the first), so that they add up to the file's length.
    /// </summary>
    public override IEnumerable<CorpusDocument> Documents()
    {
        using StreamReader reader = OpenUtf8(_path, out int preamble);
        long pending = preamble;                // bytes not yet counted with a document
        long lineNumber = 0;
        CorpusDocument? held = null;          // given out once the lines after it up to the next document are counted
        foreach ((string line, int lineBreak) in Lines(reader))
        {
            lineNumber++;
            long bytes = Encoding.UTF8.GetByteCount(line) + lineBreak;
            if (string.IsNullOrWhiteSpace(line))
            {
                if (held is null) pending += bytes;
                else held = held with { SourceBytes = held.SourceBytes + bytes };
                continue;
            }
            if (held is not null) yield return held;
            held = new CorpusDocument(Parse(line, $"{_path}:{lineNumber}"), $"{_path}:{lineNumber}", pending + bytes);
            pending = 0;
        }
        if (held is not null) yield return held;
    }

    private string Parse(string line, string origin)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{origin}: each line must be a JSON object; got a {doc.RootElement.ValueKind}.");
            if (!doc.RootElement.TryGetProperty(_field, out JsonElement value))
                throw new InvalidDataException($"{origin}: the object has no field '{_field}'.");
            return value.ValueKind == JsonValueKind.String
                ? value.GetString()!
                : throw new InvalidDataException($"{origin}: field '{_field}' must be a string; got a {value.ValueKind}.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{origin}: not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// The lines of <paramref name="reader"/> as <see cref="StreamReader.ReadLine"/> splits them (at "\n", "\r\n" or
    /// "\r"; a last line without a break included, nothing after a final break), each with the bytes of its break (0, 1 or 2).
    /// </summary>
    private IEnumerable<(string Line, int LineBreak)> Lines(StreamReader reader)
    {
        var buffer = new char[1 << 16];
        var line = new StringBuilder();
        long lineNumber = 1;
        int count = Fill(reader, buffer, lineNumber), at = 0;
        while (count > 0)
        {
            int end = buffer.AsSpan(at, count - at).IndexOfAny('\r', '\n');
            if (end < 0)
            {
                line.Append(buffer, at, count - at);
                count = Fill(reader, buffer, lineNumber);
                at = 0;
                continue;
            }
            line.Append(buffer, at, end);
            at += end;
            int lineBreak = 1;
            if (buffer[at++] == '\r')
            {
                if (at == count)
                {
                    count = Fill(reader, buffer, lineNumber);
                    at = 0;
                }
                if (at < count && buffer[at] == '\n')
                {
                    at++;
                    lineBreak = 2;
                }
            }
            yield return (line.ToString(), lineBreak);
            line.Clear();
            lineNumber++;
        }
        if (line.Length > 0) yield return (line.ToString(), 0);
    }

    private int Fill(StreamReader reader, char[] buffer, long lineNumber)
    {
        try
        {
            return reader.Read(buffer, 0, buffer.Length);
        }
        catch (DecoderFallbackException e)
        {
            throw NotUtf8($"{_path}:{lineNumber}", e);   // the decoder reads ahead: the bad bytes are on this line or a later one
        }
    }
}
