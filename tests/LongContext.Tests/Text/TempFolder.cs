namespace LongContext.Tests.Text;

/// <summary>A fresh folder under the system temp directory, deleted with everything in it on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    /// <summary>Creates the folder.</summary>
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "longcontext-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    /// <summary>Full path of the folder.</summary>
    public string Path { get; }

    /// <summary>Full path of a file inside it.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Copies every file of a folder into this one (made writable).</summary>
    public TempFolder CopyFrom(string folder, params string[] except)
    {
        foreach (string f in Directory.EnumerateFiles(folder))
        {
            string name = System.IO.Path.GetFileName(f);
            if (except.Contains(name)) continue;
            System.IO.File.Copy(f, File(name));
            System.IO.File.SetAttributes(File(name), FileAttributes.Normal);
        }
        return this;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
