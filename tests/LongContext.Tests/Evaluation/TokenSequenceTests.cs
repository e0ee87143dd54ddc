using LongContext.Llama.Evaluation;
using LongContext.Tests.Support;
using LongContext.Text.Corpus;

namespace LongContext.Tests.Evaluation;

/// <summary>Raw token files (LongLoRA's uint16 <c>.bin</c>, and uint32) read back as written, bad files named.</summary>
[Trait(Category.Name, Category.Model)]
public sealed class TokenSequenceTests : IDisposable
{
    private readonly string folder = Path.Combine(Path.GetTempPath(), "lc-tokens-" + Guid.NewGuid().ToString("N"));

    public TokenSequenceTests() => Directory.CreateDirectory(folder);

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Theory]
    [InlineData(TokenFileFormat.UInt16)]
    [InlineData(TokenFileFormat.UInt32)]
    public void File_ReadsTheIdsItHolds(TokenFileFormat format)
    {
        long[] ids = [0, 1, 65535, 31999, 7, 12345];
        string path = Path.Combine(folder, "test.bin");
        using (var w = new BinaryWriter(File.Create(path)))
            foreach (long id in ids)
                if (format == TokenFileFormat.UInt16) w.Write((ushort)id); else w.Write((uint)id);
        using var tokens = TokenSequence.FromFile(path, format);
        Assert.Equal(ids.Length, tokens.Count);
        Assert.Equal(ids[2..5], tokens.Read(2, 3, 70000));
    }

    [Fact]
    public void File_IdOutsideTheVocabulary_NamesFileIndexAndLimit()
    {
        string path = Path.Combine(folder, "big.bin");
        File.WriteAllBytes(path, [1, 0, 0x10, 0x27, 3, 0]);                 // 1, 10000, 3
        using var tokens = TokenSequence.FromFile(path);
        var e = Assert.Throws<InvalidDataException>(() => tokens.Read(0, 3, 5000));
        Assert.Contains(path, e.Message);
        Assert.Contains("token 1", e.Message);
        Assert.Contains("id 10000", e.Message);
        Assert.Contains("[0, 5000)", e.Message);
    }

    [Fact]
    public void File_WithAnOddByteCount_IsRejected()
    {
        string path = Path.Combine(folder, "odd.bin");
        File.WriteAllBytes(path, [1, 2, 3]);
        var e = Assert.Throws<InvalidDataException>(() => TokenSequence.FromFile(path));
        Assert.Contains("3 bytes", e.Message);
    }

    [Fact]
    public void EmptyFileOrArray_IsRejected()
    {
        string path = Path.Combine(folder, "empty.bin");
        File.WriteAllBytes(path, []);
        Assert.Throws<InvalidDataException>(() => TokenSequence.FromFile(path));
        Assert.Throws<ArgumentException>(() => TokenSequence.FromArray([]));
    }

    [Theory]
    [InlineData(long.MaxValue, 2, "start")]        // start + count overflowed past the bound check into Array.Copy's error
    [InlineData(2, 2, "start")]
    [InlineData(-1, 1, "start")]
    [InlineData(0, -1, "count")]
    public void Read_ARangeOutsideTheSequence_NamesTheParameter(long start, int count, string parameter)
    {
        using var tokens = TokenSequence.FromArray([1, 2, 3]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tokens.Read(start, count, 10));
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains(parameter == "count" ? "non-negative" : "of 3 tokens", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFile_IsNamed()
    {
        string path = Path.Combine(folder, "absent.bin");
        var e = Assert.Throws<FileNotFoundException>(() => TokenSequence.FromFile(path));
        Assert.Contains(path, e.Message);
    }
}
