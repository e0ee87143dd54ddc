using System.Runtime.InteropServices;
using System.Text;
using LongContext.Tests.Evaluation;
using LongContext.Tests.Support;
using LongContext.Text.Corpus;

namespace LongContext.Tests.Text;

/// <summary>Token files (LongLoRA's np.memmap layout), packed-row files, seeded shuffling, corpus sources and their errors.</summary>
[Trait(Category.Name, TextCategory.Name)]
public sealed class CorpusFilesTests
{
    [Theory]
    [InlineData(TokenFileFormat.UInt16, 65535)]
    [InlineData(TokenFileFormat.UInt32, 128255)]
    public void TokenFile_RoundTrips_AndIsRawLittleEndianWithoutHeader(TokenFileFormat format, int largest)
    {
        using var temp = new TempFolder();
        string path = temp.File("val.bin");
        int[] ids = [0, 1, 29871, largest, 7, 42];
        Assert.Equal(ids.Length, TokenFile.Write(path, [ids[..3], ids[3..]], format));
        byte[] raw = File.ReadAllBytes(path);
        // What np.memmap(path, dtype=uint16 / uint32) sees on a little-endian host.
        int[] seen = format == TokenFileFormat.UInt16
            ? MemoryMarshal.Cast<byte, ushort>(raw).ToArray().Select(x => (int)x).ToArray()
            : MemoryMarshal.Cast<byte, uint>(raw).ToArray().Select(x => (int)x).ToArray();
        Assert.Equal(ids, seen);
        Assert.Equal(ids.Length, TokenFile.Count(path, format));
        Assert.Equal(ids, TokenFile.ReadAll(path, format, vocabSize: largest + 1));
        Assert.Equal(ids, TokenFile.Read(path, format, largest + 1, chunkTokens: 4).SelectMany(c => c).ToArray());
    }

    [Fact]
    public void TokenFile_IdOutsideTheVocabulary_NamesFilePositionValueAndLimit()
    {
        using var temp = new TempFolder();
        string path = temp.File("pg19.bin");
        TokenFile.Write(path, [5, 6, 32000, 7], TokenFileFormat.UInt16);
        var e = Assert.Throws<InvalidDataException>(() => TokenFile.ReadAll(path, TokenFileFormat.UInt16, vocabSize: 32000));
        Assert.Contains(path, e.Message);
        Assert.Contains("token 2", e.Message);
        Assert.Contains("32000", e.Message);
        Assert.Contains("[0, 32000)", e.Message);
    }

    [Fact]
    public void TokenFile_NullOrEmptyPath_NamesPath()
    {
        // Before: FileInfo's own parameter, 'fileName', was named.
        Assert.Equal("path", Assert.Throws<ArgumentNullException>(() => TokenFile.Count(null!, TokenFileFormat.UInt16)).ParamName);
        Assert.Equal("path", Assert.Throws<ArgumentNullException>(() => TokenFile.Read(null!, TokenFileFormat.UInt16, 10)).ParamName);
        Assert.Equal("path", Assert.Throws<ArgumentException>(() => TokenFile.ReadAll("", TokenFileFormat.UInt16, 10)).ParamName);
    }

    [Fact]
    public void TokenFile_LengthNotAMultipleOfTheElement_NamesFileAndLength()
    {
        using var temp = new TempFolder();
        string path = temp.File("odd.bin");
        File.WriteAllBytes(path, [1, 0, 2]);
        var e = Assert.Throws<InvalidDataException>(() => TokenFile.Count(path, TokenFileFormat.UInt16));
        Assert.Contains(path, e.Message);
        Assert.Contains("3 bytes", e.Message);
    }

    [Fact]
    public void TokenFile_IdTooLargeForUInt16_IsRejected_AndNothingIsWritten()
    {
        using var temp = new TempFolder();
        string path = temp.File("big.bin");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TokenFile.Write(path, [1, 70000], TokenFileFormat.UInt16));
        Assert.Contains("70000", e.Message);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(temp.Path));
    }

    [Fact]
    public void PackedRows_RoundTripThroughTheFile()
    {
        using var temp = new TempFolder();
        PackedRow[] rows = [new([1, 2, 3], 3), new([4, 5, 0], 2), new([6, 0, 0], 1)];
        var file = PackedRows.Write(temp.File("rows.lcrows"), rows, 3, "test");
        Assert.Equal(3, file.Count);
        for (int i = 0; i < rows.Length; i++) { var back = file.ReadRow(i); Assert.Equal(rows[i].InputIds, back.InputIds); Assert.Equal(rows[i].Length, back.Length); }
    }

    /// <summary>A damaged rows file: row 1's token count (bytes 36..39: 20-byte header, then 16 bytes a row) and then an id set by hand.</summary>
    [Theory]
    [InlineData(36, -1, "row 1 has token count -1; a row holds 1..3 tokens")]
    [InlineData(36, 4, "row 1 has token count 4; a row holds 1..3 tokens")]
    [InlineData(44, -7, "row 1 holds token id -7 at position 1; ids are non-negative")]
    public void PackedRows_ADamagedRow_IsRefusedNamingTheFileTheRowAndTheValue(int offset, int value, string fragment)
    {
        using var temp = new TempFolder();
        string path = temp.File("rows.lcrows");
        PackedRows.Write(path, [new([1, 2, 3], 3), new([4, 5, 0], 2)], 3, "test");
        byte[] bytes = File.ReadAllBytes(path);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(offset), value);
        File.WriteAllBytes(path, bytes);
        var file = PackedRows.Open(path);
        Assert.Equal([1, 2, 3], file.ReadRow(0).InputIds);

        var e = Assert.Throws<InvalidDataException>(() => file.ReadRow(1));
        Assert.Contains(fragment, e.Message);
        Assert.Contains(file.Path, e.Message);
        var batches = Assert.Throws<InvalidDataException>(() => file.Batches(2).ToList());
        Assert.Contains(fragment, batches.Message);
    }

    [Fact]
    public void PackedRows_Write_RefusesANegativeId()
    {
        using var temp = new TempFolder();
        var e = Assert.Throws<ArgumentException>(() => PackedRows.Write(temp.File("rows.lcrows"), [new([1, -2, 3], 3)], 3, "test"));
        Assert.Equal("rows", e.ParamName);
        Assert.Contains("token id -2 at position 1", e.Message);
        Assert.Empty(Directory.GetFiles(temp.Path));
    }

    /// <summary>A token cache whose second id (bytes 28..31: 24-byte header, then uint32 ids) is set above int.MaxValue by hand.</summary>
    [Fact]
    public void TokenizedCorpus_AnIdAboveInt32_IsRefusedNamingTheFile()
    {
        using var temp = new TempFolder();
        string path = temp.File("docs.lctoks");
        TokenizedCorpus.Write(path, [[5, 6, 7]]);
        byte[] bytes = File.ReadAllBytes(path);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(28), 0x80000001);
        File.WriteAllBytes(path, bytes);
        var corpus = TokenizedCorpus.Open(path);

        var e = Assert.Throws<InvalidDataException>(() => corpus.Documents().ToList());
        Assert.Contains("document 0 holds token id 2147483649 at position 1", e.Message);
        Assert.Contains(corpus.Path, e.Message);
    }

    [Fact]
    public void PackedRows_FromAnEmptyCorpus_NamesTheCorpus_AndWritesNothing()
    {
        using var temp = new TempFolder();
        var e = Assert.Throws<InvalidDataException>(() => PackedRows.Write(temp.File("rows.lcrows"), [], 8, "my-corpus.jsonl"));
        Assert.Contains("my-corpus.jsonl", e.Message);
        Assert.Empty(Directory.GetFiles(temp.Path));
    }

    [Fact]
    public void Batches_WithASeed_AreAPermutationThatRepeats_AndChangesWithTheEpoch()
    {
        using var temp = new TempFolder();
        var rows = Enumerable.Range(0, 23).Select(i => new PackedRow([i, i, i], 3)).ToList();
        var file = PackedRows.Write(temp.File("rows.lcrows"), rows, 3, "test");
        List<int> Order(ulong? seed, int epoch) => file.Batches(5, seed, epoch).SelectMany(b => { using (b) return b.RowIndices.ToList(); }).ToList();
        var first = Order(7, 0);
        Assert.Equal(Enumerable.Range(0, 23), first.Order());
        Assert.Equal(first, Order(7, 0));
        Assert.NotEqual(first, Order(7, 1));
        Assert.Equal(Enumerable.Range(0, 23), Order(null, 0));
        // each batch holds the rows it names
        foreach (var b in file.Batches(5, 7))
            using (b) Assert.Equal(b.RowIndices.Select(i => (long)i), b.InputIds.select(1, 0).data<long>().ToArray());
        Assert.Equal(4, file.Batches(5, 7, dropLast: true).Count(b => { b.Dispose(); return true; }));
    }

    [Fact]
    public void Jsonl_MissingOrNonStringField_NamesFileLineAndField()
    {
        using var temp = new TempFolder();
        string path = temp.File("c.jsonl");
        File.WriteAllText(path, "{\"text\": \"a\"}\n\n{\"body\": \"b\"}\n");
        var e = Assert.Throws<InvalidDataException>(() => CorpusSource.Jsonl(path).Documents().ToList());
        Assert.Contains($"{path}:3", e.Message);
        Assert.Contains("'text'", e.Message);
        File.WriteAllText(path, "{\"text\": 5}\n");
        Assert.Contains("must be a string", Assert.Throws<InvalidDataException>(() => CorpusSource.Jsonl(path).Documents().ToList()).Message);
    }

    [Theory]
    [InlineData("\n", false, true)]
    [InlineData("\r\n", false, true)]
    [InlineData("\n", true, false)]
    [InlineData("\r\n", true, false)]
    [InlineData("\r", false, true)]   // old Mac line breaks: split as StreamReader.ReadLine splits them
    public void Jsonl_SourceBytes_AreEachDocumentsLinesWithTheirBreaks_AndEndAtTheFileLength(string lineBreak, bool byteOrderMark, bool finalBreak)
    {
        // Before: every line counted its UTF-8 bytes + 1: a CRLF file came up a byte short a line, a last line without
        // a break a byte over, and blank lines and a byte-order mark counted nothing, so the progress did not end at
        // the file's length. Now a blank line counts with the document before it (the first document: those before it).
        using var temp = new TempFolder();
        string path = temp.File("c.jsonl");
        string[] lines = ["", "{\"text\": \"a\"}", "{\"text\": \"café ✓\"}", "  ", "{\"text\": \"b\"}", "\t"];
        byte[] bom = byteOrderMark ? [0xEF, 0xBB, 0xBF] : [];
        File.WriteAllBytes(path, [.. bom, .. Encoding.UTF8.GetBytes(string.Join(lineBreak, lines) + (finalBreak ? lineBreak : ""))]);
        long Line(int i) => Encoding.UTF8.GetByteCount(lines[i]) + (i < lines.Length - 1 || finalBreak ? lineBreak.Length : 0);
        long[] expected = [bom.Length + Line(0) + Line(1), Line(2) + Line(3), Line(4) + Line(5)];
        Assert.Equal(new FileInfo(path).Length, expected.Sum());

        var documents = CorpusSource.Jsonl(path).Documents().ToList();
        Assert.Equal(["a", "café ✓", "b"], documents.Select(d => d.Text));
        Assert.Equal([$"{path}:2", $"{path}:3", $"{path}:5"], documents.Select(d => d.Origin));
        Assert.Equal(expected, documents.Select(d => d.SourceBytes));

        var reports = new List<TokenizationProgress>();
        var options = new TokenizationOptions { CacheDirectory = temp.File("cache"), TokenizerKey = "chars", BatchDocuments = 1, MaxDegreeOfParallelism = 1 };
        CorpusTokenizer.Tokenize(CorpusSource.Jsonl(path), new CharTokenizer(), options, new SynchronousProgress(reports.Add));
        Assert.Equal([expected[0], expected[0] + expected[1], new FileInfo(path).Length], reports.Select(r => r.BytesRead));
    }

    [Fact]
    public void Jsonl_ACrLfAcrossTheReadBuffersEdge_IsOneLineBreak()
    {
        // The lines are read in blocks of 65536 characters: a \r that ends one block and the \n that starts the next
        // are one break (no blank line between them, 2 bytes), wherever the edge falls.
        using var temp = new TempFolder();
        string path = temp.File("c.jsonl");
        for (int length = 65520; length <= 65540; length++)
        {
            string first = "{\"text\": \"" + new string('x', length - 12) + "\"}", second = "{\"text\": \"b\"}";
            File.WriteAllText(path, first + "\r\n" + second + "\r\n");
            var documents = CorpusSource.Jsonl(path).Documents().ToList();
            Assert.Equal([length + 2L, second.Length + 2L], documents.Select(d => d.SourceBytes));
            Assert.Equal($"{path}:2", documents[1].Origin);
        }
    }

    private sealed class SynchronousProgress(Action<TokenizationProgress> report) : IProgress<TokenizationProgress>
    {
        public void Report(TokenizationProgress value) => report(value);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF, 0xFE }, "UTF-16 LE byte-order mark (FF FE)")]
    [InlineData(new byte[] { 0xFE, 0xFF }, "UTF-16 BE byte-order mark (FE FF)")]
    [InlineData(new byte[] { 0xFF, 0xFE, 0x00, 0x00 }, "UTF-32 LE byte-order mark (FF FE 00 00)")]
    [InlineData(new byte[] { 0x00, 0x00, 0xFE, 0xFF }, "UTF-32 BE byte-order mark (00 00 FE FF)")]
    public void AUtf16Or32ByteOrderMark_IsRefusedNamingIt_NotDecodedAsThatEncoding(byte[] mark, string fragment)
    {
        using var temp = new TempFolder();
        bool utf32 = mark.Length == 4, bigEndian = mark[0] == 0x00 || mark[0] == 0xFE;
        Encoding encoding = utf32 ? new UTF32Encoding(bigEndian, byteOrderMark: false) : new UnicodeEncoding(bigEndian, byteOrderMark: false);
        string txt = temp.File("wide.txt"), jsonl = temp.File("wide.jsonl");
        File.WriteAllBytes(txt, [.. mark, .. encoding.GetBytes("In the beginning")]);
        File.WriteAllBytes(jsonl, [.. mark, .. encoding.GetBytes("{\"text\": \"In the beginning\"}\n")]);
        foreach (string file in new[] { txt, jsonl })
        {
            CorpusSource source = file.EndsWith(".txt", StringComparison.Ordinal) ? CorpusSource.TextFiles(file) : CorpusSource.Jsonl(file);
            var e = Assert.Throws<InvalidDataException>(() => source.Documents().ToList());
            Assert.Contains(file, e.Message);
            Assert.Contains(fragment, e.Message);
        }
    }

    [Fact]
    public void NotUtf8_IsRefusedNamingTheFile_NotReplacedSilently()
    {
        using var temp = new TempFolder();
        string txt = temp.File("latin1.txt"), jsonl = temp.File("c.jsonl");
        File.WriteAllBytes(txt, [.. "caf"u8, 0xE9, .. " au lait"u8]);   // Latin-1 'é'
        var e = Assert.Throws<InvalidDataException>(() => CorpusSource.TextFiles(txt).Documents().ToList());
        Assert.Contains(txt, e.Message);
        Assert.Contains("not UTF-8", e.Message);
        Assert.Contains("E9", e.Message);
        File.WriteAllBytes(jsonl, [.. "{\"text\": \"ok\"}\n{\"text\": \"caf"u8, 0xE9, .. "\"}\n"u8]);
        Assert.Contains("not UTF-8", Assert.Throws<InvalidDataException>(() => CorpusSource.Jsonl(jsonl).Documents().ToList()).Message);
        // valid UTF-8, with or without a byte order mark, reads as before
        File.WriteAllBytes(txt, [0xEF, 0xBB, 0xBF, .. "café"u8]);
        Assert.Equal("café", CorpusSource.TextFiles(txt).Documents().Single().Text);
    }

    [Fact]
    public void TextFiles_EmptyFolder_NamesFolderAndPattern()
    {
        using var temp = new TempFolder();
        var e = Assert.Throws<FileNotFoundException>(() => CorpusSource.TextFiles(temp.Path));
        Assert.Contains(temp.Path, e.Message);
        Assert.Contains("*.txt", e.Message);
    }

    [Fact]
    public void TextFiles_AFileWithAPatternItsNameDoesNotMatch_IsRefusedNamingBoth()
    {
        // Before: the pattern was ignored for a file path: TextFiles("notes.md", "*.txt") read notes.md.
        using var temp = new TempFolder();
        string md = temp.File("notes.md");
        File.WriteAllText(md, "markdown");
        File.WriteAllText(temp.File("a.txt"), "text");
        foreach (string pattern in new[] { "*.txt", "notes.txt", "sub/*.md" })
        {
            var e = Assert.Throws<ArgumentException>(() => CorpusSource.TextFiles(md, pattern));
            Assert.Equal("searchPattern", e.ParamName);
            Assert.Contains($"'{md}'", e.Message, StringComparison.Ordinal);
            Assert.Contains($"'{pattern}'", e.Message, StringComparison.Ordinal);
        }
        // No pattern: the file named is read, whatever its name; a pattern it matches (as a folder search would): read too.
        foreach (string? pattern in new[] { null, "*.md", "notes.*", "*", "notes.md" })
            Assert.Equal("markdown", CorpusSource.TextFiles(md, pattern).Documents().Single().Text);
        // A folder: no pattern is *.txt.
        Assert.Equal(["text"], CorpusSource.TextFiles(temp.Path).Documents().Select(d => d.Text));
        Assert.Equal(["markdown"], CorpusSource.TextFiles(temp.Path, "*.md").Documents().Select(d => d.Text));
        Assert.Equal("searchPattern", Assert.Throws<ArgumentException>(() => CorpusSource.TextFiles(md, "")).ParamName);
    }

    [Fact]
    public void SeededShuffle_IsAPermutation_ForEveryCount()
    {
        foreach (int n in new[] { 0, 1, 2, 17, 1000 })
            Assert.Equal(Enumerable.Range(0, n), SeededShuffle.Permutation(n, 123).Order());
    }
}
