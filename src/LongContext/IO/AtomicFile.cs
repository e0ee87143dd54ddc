using System.Text;

namespace LongContext.IO;

/// <summary>
/// Replaces a file all at once: the content goes to a temporary file in the same folder, is flushed to disk, and is
/// then renamed over the target. A failure at any point before the rename leaves the previous file (or no file)
/// untouched and removes the temporary one. Every file the library writes goes through here.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes a file through <paramref name="write"/> and renames it into place.</summary>
    /// <param name="path">Destination file; its folder is created if absent.</param>
    /// <param name="write">Writes the whole content to the stream it is given.</param>
    /// <param name="wrap">Wraps the temporary file's stream before <paramref name="write"/> sees it (tests inject
    /// failures here); the wrapper must not close the stream it wraps.</param>
    public static void Write(string path, Action<Stream> write, Func<Stream, Stream>? wrap = null)
    {
        using StagedFile staged = Stage(path, write, wrap);
        staged.Commit();
    }

    /// <summary>
    /// Writes the content to the temporary file and flushes it, without renaming it yet: a save of several files
    /// stages them all (the long part, where failures happen) and then commits them one after another.
    /// </summary>
    /// <returns>The staged file; <see cref="StagedFile.Commit"/> renames it over the target, disposing an uncommitted one deletes it.</returns>
    public static StagedFile Stage(string path, Action<Stream> write, Func<Stream, Stream>? wrap = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no parent folder.", nameof(path));
        if (Directory.Exists(full)) throw new IOException($"cannot write file '{full}': a folder of that name exists.");
        Directory.CreateDirectory(folder);
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

    /// <summary>Writes UTF-8 text (no byte-order mark) atomically.</summary>
    public static void WriteAllText(string path, string text, Func<Stream, Stream>? wrap = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        Write(path, s => s.Write(bytes), wrap);
    }

    /// <summary>The temporary file's name: hidden, beside the target, unique per write.</summary>
    internal static string TemporaryName(string fullPath)
        => Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
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
