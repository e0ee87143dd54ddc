using System.Text;
using System.Text.RegularExpressions;

namespace LongContext.IO;

/// <summary>
/// Replaces a file all at once: the content goes to a hidden temporary file beside the target, is flushed to disk,
/// and is then renamed over the target (atomic on one file system). A failure at any point before the rename leaves
/// the previous file (or no file) byte for byte and removes the temporary one. Every file the library and its
/// programs write goes through here; use it for your own outputs so that a crash never leaves half a file.
/// </summary>
/// <remarks>
/// The temporary file is named <c>.{name}.{32 hex digits}.tmp{extension}</c> in the target's folder (it keeps the
/// target's extension for writers that choose a format by it); a process killed mid-write leaves such a file behind,
/// which <see cref="IsTemporaryFile"/> recognizes.
/// </remarks>
/// <example>
/// <code>
/// AtomicFile.WriteAllText("out/results.csv", csv);
/// AtomicFile.Write("out/ids.bin", stream => stream.Write(bytes));
/// AtomicFile.WriteThroughPath("out/plot.png", temp => plot.SavePng(temp, 800, 600));
/// </code>
/// </example>
public static partial class AtomicFile
{
    /// <summary>Writes a file through <paramref name="write"/> and renames it into place.</summary>
    /// <param name="path">Destination file; its folder is created if absent.</param>
    /// <param name="write">Writes the whole content to the (seekable, write-only) stream it is given; an exception it
    /// throws propagates after the temporary file is removed.</param>
    /// <exception cref="IOException">A folder named <paramref name="path"/> exists, a file stands where one of its folders would be, or the write or rename failed.</exception>
    public static void Write(string path, Action<Stream> write) => Write(path, write, wrap: null);

    /// <summary>Writes UTF-8 text (no byte-order mark) atomically.</summary>
    /// <param name="path">Destination file; its folder is created if absent.</param>
    /// <param name="text">The whole content.</param>
    /// <exception cref="IOException">A folder named <paramref name="path"/> exists, a file stands where one of its folders would be, or the write or rename failed.</exception>
    public static void WriteAllText(string path, string text) => WriteAllText(path, text, wrap: null);

    /// <summary>
    /// For writers that take a path rather than a stream (an image library's <c>SavePng(path)</c>, <c>File.Copy</c>):
    /// <paramref name="write"/> creates the temporary file at the path it is given (same folder and extension as
    /// <paramref name="path"/>), which is then flushed to disk and renamed over the destination.
    /// </summary>
    /// <param name="path">Destination file; its folder is created if absent.</param>
    /// <param name="write">Creates the file at the path it is given.</param>
    /// <exception cref="IOException"><paramref name="write"/> returned without creating the file, a folder named
    /// <paramref name="path"/> exists, or the rename failed.</exception>
    public static void WriteThroughPath(string path, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Target(path);
        using var staged = new StagedFile(full, TemporaryName(full));   // deleted on the way out unless committed
        write(staged.TemporaryPath);
        if (!File.Exists(staged.TemporaryPath))
            throw new IOException($"cannot write '{full}': the writer returned without creating the file it was given ('{staged.TemporaryPath}').");
        using (var file = new FileStream(staged.TemporaryPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            file.Flush(flushToDisk: true);
        staged.Commit();
    }

    /// <summary>
    /// Whether a file name is one of this class's temporary files (<c>.{name}.{32 hex digits}.tmp{extension}</c>): what a
    /// write interrupted by a killed process leaves behind, safe to delete and not a user's file.
    /// </summary>
    /// <param name="fileName">A file name (a path's last part; a longer path is reduced to its name).</param>
    public static bool IsTemporaryFile(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        return TemporaryPattern().IsMatch(Path.GetFileName(fileName));
    }

    /// <summary>The stream overload, with a wrapper around the temporary file's stream (tests inject failures here).</summary>
    /// <param name="path">Destination file.</param>
    /// <param name="write">Writes the content.</param>
    /// <param name="wrap">Wraps the stream before <paramref name="write"/> sees it; must not close the stream it wraps.</param>
    internal static void Write(string path, Action<Stream> write, Func<Stream, Stream>? wrap)
    {
        using StagedFile staged = Stage(path, write, wrap);
        staged.Commit();
    }

    /// <summary>The text overload with a stream wrapper (see <see cref="Write(string, Action{Stream}, Func{Stream, Stream}?)"/>).</summary>
    internal static void WriteAllText(string path, string text, Func<Stream, Stream>? wrap)
    {
        using StagedFile staged = StageText(path, text, wrap);
        staged.Commit();
    }

    /// <summary>UTF-8 text (no byte-order mark) staged as <see cref="Stage"/> does: written beside the target, not yet renamed over it.</summary>
    internal static StagedFile StageText(string path, string text, Func<Stream, Stream>? wrap = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        return Stage(path, s => s.Write(bytes), wrap);
    }

    /// <summary>
    /// Writes several files as one unit: <paramref name="stage"/> adds each file it writes (<see cref="Stage"/>,
    /// <see cref="StageText"/>, <see cref="SafetensorsFile.Stage"/>) to the list; when it returns, all are renamed into
    /// place; when it throws, every file staged so far is deleted and no target has changed.
    /// </summary>
    internal static void WriteTogether(Action<List<StagedFile>> stage)
    {
        ArgumentNullException.ThrowIfNull(stage);
        var staged = new List<StagedFile>();
        try
        {
            stage(staged);
            foreach (StagedFile file in staged) file.Commit();
        }
        finally
        {
            foreach (StagedFile file in staged) file.Dispose();
        }
    }

    /// <summary>
    /// Writes the content to the temporary file and flushes it, without renaming it yet: a save of several files
    /// stages them all (the long part, where failures happen) and then commits them one after another.
    /// </summary>
    /// <returns>The staged file; <see cref="StagedFile.Commit"/> renames it over the target, disposing an uncommitted one deletes it.</returns>
    internal static StagedFile Stage(string path, Action<Stream> write, Func<Stream, Stream>? wrap = null)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Target(path);
        var staged = new StagedFile(full, TemporaryName(full));
        try
        {
            using var file = new FileStream(staged.TemporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            Stream target = wrap is null ? file : wrap(file);
            write(target);
            target.Flush();
            file.Flush(flushToDisk: true);
        }
        catch
        {
            staged.Dispose();
            throw;
        }
        return staged;
    }

    /// <summary>The full destination path, checked and with its folder created.</summary>
    private static string Target(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || Path.GetFileName(full).Length == 0)
            throw new ArgumentException($"'{path}' names no file (a file path is expected).", nameof(path));
        if (Directory.Exists(full)) throw new IOException($"cannot write file '{full}': a folder of that name exists.");
        CreateFolder(folder);
        return full;
    }

    /// <summary>
    /// <see cref="Directory.CreateDirectory(string)"/> with a message that names the file standing where the folder or
    /// one of its parents would be (.NET's own names only the path it was given).
    /// </summary>
    /// <exception cref="IOException">A file holds the name of <paramref name="folder"/> or of one of its parents.</exception>
    internal static void CreateFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        string full = Path.GetFullPath(folder);
        if (FileInTheWay(full) is { } file)
            throw new IOException(file == full
                ? $"cannot create folder '{full}': a file of that name exists."
                : $"cannot create folder '{full}': '{file}' is a file, not a folder.");
        Directory.CreateDirectory(full);
    }

    /// <summary>The nearest existing ancestor of <paramref name="folder"/> (itself included) when it is a file, else null.</summary>
    private static string? FileInTheWay(string folder)
    {
        for (string? at = folder; at is not null; at = Path.GetDirectoryName(at))
        {
            if (Directory.Exists(at)) return null;
            if (File.Exists(at)) return at;
        }
        return null;
    }

    /// <summary>The temporary file's name: hidden, beside the target, unique per write, with the target's extension.</summary>
    internal static string TemporaryName(string fullPath)
        => Path.Combine(Path.GetDirectoryName(fullPath)!,
            $".{Path.GetFileNameWithoutExtension(fullPath)}.{Guid.NewGuid():N}.tmp{Path.GetExtension(fullPath)}");

    [GeneratedRegex(@"^\..*\.[0-9a-f]{32}\.tmp(\.[^.]*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex TemporaryPattern();
}

/// <summary>A fully written, flushed temporary file waiting to be renamed over its target.</summary>
internal sealed class StagedFile : IDisposable
{
    private bool _finished;

    internal StagedFile(string path, string temporaryPath)
    {
        Path = path;
        TemporaryPath = temporaryPath;
    }

    /// <summary>The target.</summary>
    public string Path { get; }

    /// <summary>The temporary file beside it.</summary>
    public string TemporaryPath { get; }

    /// <summary>Renames the temporary file over the target (atomic on one file system).</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        File.Move(TemporaryPath, Path, overwrite: true);
        _finished = true;
    }

    /// <summary>Deletes the temporary file unless it was committed.</summary>
    public void Dispose()
    {
        if (_finished) return;
        _finished = true;
        try { File.Delete(TemporaryPath); }
        catch (IOException) { /* the original error matters more */ }
        catch (UnauthorizedAccessException) { }
    }
}
