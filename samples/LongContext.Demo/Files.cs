namespace LongContext.Demo;

/// <summary>Whole-file writes that never leave a half-written file: staged beside the target, then renamed over it.</summary>
public static class Files
{
    /// <summary>Writes text atomically.</summary>
    /// <param name="path">Destination.</param>
    /// <param name="text">Content.</param>
    public static void WriteText(string path, string text) => Write(path, temp => File.WriteAllText(temp, text));

    /// <summary>Writes through <paramref name="write"/> to a staged file, then renames it to <paramref name="path"/>.</summary>
    /// <param name="path">Destination.</param>
    /// <param name="write">Writes the staged file (given its path).</param>
    public static void Write(string path, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileNameWithoutExtension(full)}.{Guid.NewGuid():N}.tmp{Path.GetExtension(full)}");
        try
        {
            write(temp);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
