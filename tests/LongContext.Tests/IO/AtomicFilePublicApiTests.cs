using LongContext.IO;
using LongContext.Tests.Support;

namespace LongContext.Tests.IO;

/// <summary>
/// The public face of <see cref="AtomicFile"/>: the path-based writer (for libraries that save to a path), the
/// recognition of the temporary files a killed write leaves, and the checks on the destination.
/// </summary>
[Trait(Category.Name, Category.Build)]
public sealed class AtomicFilePublicApiTests
{
    [Fact]
    public void WriteThroughPath_GivesTheWriterAHiddenPathWithTheTargetsExtension_AndReplacesTheTarget()
    {
        using var folder = new TempFolder();
        string path = folder.File("plot.png");
        File.WriteAllText(path, new string('x', 10_000));
        string? given = null;
        AtomicFile.WriteThroughPath(path, temp =>
        {
            given = temp;
            File.WriteAllBytes(temp, [1, 2, 3]);
        });
        Assert.NotNull(given);
        Assert.Equal(folder.Path, Path.GetDirectoryName(given));
        Assert.StartsWith(".plot.", Path.GetFileName(given), StringComparison.Ordinal);
        Assert.Equal(".png", Path.GetExtension(given));
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        Assert.Equal(["plot.png"], folder.Names());
    }

    [Fact]
    public void WriteThroughPath_WriterFailingAfterPartOfTheFile_LeavesThePreviousFileAndNoTemporary()
    {
        using var folder = new TempFolder();
        string path = folder.File("report.md");
        File.WriteAllText(path, "old");
        var ex = Assert.Throws<InvalidOperationException>(() => AtomicFile.WriteThroughPath(path, temp =>
        {
            File.WriteAllText(temp, "half of the new");
            throw new InvalidOperationException("writer failed");
        }));
        Assert.Equal("writer failed", ex.Message);
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal(["report.md"], folder.Names());
    }

    [Fact]
    public void WriteThroughPath_WriterThatCreatesNothing_IsAnErrorNamingTheTarget()
    {
        using var folder = new TempFolder();
        string path = folder.File("out.csv");
        File.WriteAllText(path, "old");
        var ex = Assert.Throws<IOException>(() => AtomicFile.WriteThroughPath(path, _ => { }));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("without creating", ex.Message, StringComparison.Ordinal);
        Assert.Equal("old", File.ReadAllText(path));
    }

    [Fact]
    public void Write_CreatesMissingFolders_AndRefusesAFolderOrAFolderPath()
    {
        using var folder = new TempFolder();
        string nested = Path.Combine(folder.Path, "a", "b", "ids.bin");
        AtomicFile.Write(nested, s => s.Write([7, 8]));
        Assert.Equal(new byte[] { 7, 8 }, File.ReadAllBytes(nested));

        string sub = folder.File("taken");
        Directory.CreateDirectory(sub);
        var folderEx = Assert.Throws<IOException>(() => AtomicFile.WriteAllText(sub, "x"));
        Assert.Contains("a folder of that name exists", folderEx.Message, StringComparison.Ordinal);

        string plain = folder.File("plain.txt");
        File.WriteAllText(plain, "keep");
        var parentEx = Assert.Throws<IOException>(() => AtomicFile.WriteAllText(Path.Combine(plain, "sub", "out.csv"), "x"));
        Assert.Contains($"'{plain}' is a file, not a folder", parentEx.Message, StringComparison.Ordinal);
        Assert.Equal("keep", File.ReadAllText(plain));

        var slashEx = Assert.Throws<ArgumentException>(() => AtomicFile.WriteAllText(folder.Path + Path.DirectorySeparatorChar, "x"));
        Assert.Equal("path", slashEx.ParamName);
        Assert.Throws<ArgumentException>(() => AtomicFile.WriteAllText("  ", "x"));
        Assert.Throws<ArgumentNullException>(() => AtomicFile.Write(nested, null!));
    }

    /// <summary>Names written by hand (not produced by the code under test): what a killed write leaves, and look-alikes a user may own.</summary>
    public static TheoryData<string, bool> Names() => new()
    {
        { ".adapter_model.0123456789abcdef0123456789abcdef.tmp.safetensors", true },
        { ".results.fedcba9876543210fedcba9876543210.tmp.csv", true },
        { ".config.00000000000000000000000000000000.tmp.json", true },
        { ".state.safetensors.0123456789abcdef0123456789abcdef.tmp", true },   // the naming older versions used
        { "/some/folder/.log.0123456789abcdef0123456789abcdef.tmp.txt", true }, // a path is reduced to its name
        { "notes.tmp", false },
        { ".hidden", false },
        { ".draft.tmp", false },
        { ".x.0123456789ABCDEF0123456789ABCDEF.tmp", false },                  // not the lower-case hex of a Guid "N"
        { ".x.0123456789abcdef0123456789abcde.tmp", false },                   // 31 digits
        { "x.0123456789abcdef0123456789abcdef.tmp", false },                   // not hidden
        { ".x.0123456789abcdef0123456789abcdef.tmp.tar.gz", false },           // one extension only, as the writer keeps
    };

    [Theory]
    [MemberData(nameof(Names))]
    public void IsTemporaryFile_RecognizesOnlyTheWritersOwnTemporaryNames(string name, bool expected)
        => Assert.Equal(expected, AtomicFile.IsTemporaryFile(name));

    [Fact]
    public void IsTemporaryFile_RecognizesTheNameAWriteInProgressUses()
    {
        using var folder = new TempFolder();
        string? seen = null;
        AtomicFile.Write(folder.File("model.safetensors"), _ => seen = Assert.Single(folder.Names()));
        Assert.NotNull(seen);
        Assert.True(AtomicFile.IsTemporaryFile(seen), seen);
        AtomicFile.WriteThroughPath(folder.File("plot.png"), temp => { File.WriteAllText(temp, "p"); seen = Path.GetFileName(temp); });
        Assert.True(AtomicFile.IsTemporaryFile(seen), seen);
    }
}
