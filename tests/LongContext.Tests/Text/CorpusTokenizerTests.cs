using System.Text.Json;
using LongContext.Tests.Support;
using LongContext.Text.Corpus;
using LongContext.Text.Tokenization;

namespace LongContext.Tests.Text;

/// <summary>
/// Corpus tokenization against the fixture references: each document's ids are the reference ids of its text, in
/// source order whatever the parallelism; the cache is keyed by tokenizer and source; LongLoRA's joined-string
/// tokenization equals packing separately tokenized documents.
/// </summary>
[Trait(Category.Name, TextCategory.Name)]
[Trait(Category.Name, Category.Reference)]
public sealed class CorpusTokenizerTests(TokenizerFixtures fixtures) : IClassFixture<TokenizerFixtures>
{
    public static TheoryData<string> Folders() => TokenizerFixtures.AllFolders();

    private sealed class Recorder : IProgress<TokenizationProgress>
    {
        public List<TokenizationProgress> Reports { get; } = [];
        public void Report(TokenizationProgress value) { lock (Reports) Reports.Add(value); }
    }

    private static string WriteJsonl(TempFolder temp, IEnumerable<string> texts)
    {
        string path = temp.File("corpus.jsonl");
        File.WriteAllLines(path, texts.Select(t => JsonSerializer.Serialize(new Dictionary<string, string> { ["text"] = t })));
        return path;
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Tokenize_Jsonl_GivesEachCaseItsReferenceIds_InOrder_ThenComesFromTheCache(string folder)
    {
        var cases = TokenizerFixtures.Cases(folder);
        var tokenizer = fixtures.Tokenizer(folder);
        using var temp = new TempFolder();
        string jsonl = WriteJsonl(temp, cases.Select(c => c.Text));
        var options = new TokenizationOptions { CacheDirectory = temp.File("cache"), MaxDegreeOfParallelism = 2, BatchDocuments = 7 };
        var progress = new Recorder();
        var corpus = CorpusTokenizer.Tokenize(CorpusSource.Jsonl(jsonl), tokenizer, options, progress);

        Assert.Equal(cases.Select(c => c.Ids), corpus.Documents());
        Assert.Equal(cases.Sum(c => (long)c.Ids.Length), corpus.TokenCount);
        var last = progress.Reports[^1];
        Assert.Equal((cases.Count, corpus.TokenCount, new FileInfo(jsonl).Length, false), (last.Documents, last.Tokens, last.BytesRead, last.FromCache));
        Assert.Equal((cases.Count + 6) / 7, progress.Reports.Count);

        var again = new Recorder();
        var cached = CorpusTokenizer.Tokenize(CorpusSource.Jsonl(jsonl), tokenizer, options, again);
        Assert.Equal(corpus.Path, cached.Path);
        Assert.True(again.Reports.Single().FromCache);
        Assert.Single(Directory.GetFiles(options.CacheDirectory));   // no temporary file left behind
    }

    [Fact]
    public void CacheKey_ChangesWithTheSourceFile_AndTheTokenizer()
    {
        using var temp = new TempFolder();
        string jsonl = WriteJsonl(temp, ["In the beginning"]);
        string dir = temp.File("cache");
        var folders = TokenizerFixtures.Folders();
        var options = new TokenizationOptions { CacheDirectory = dir };
        string a = CorpusTokenizer.Tokenize(CorpusSource.Jsonl(jsonl), fixtures.Tokenizer(folders[0]), options).Path;
        File.WriteAllText(jsonl, "{\"text\": \"In the beginning God\"}\n");
        File.SetLastWriteTimeUtc(jsonl, DateTime.UtcNow.AddMinutes(1));
        string b = CorpusTokenizer.Tokenize(CorpusSource.Jsonl(jsonl), fixtures.Tokenizer(folders[0]), options).Path;
        Assert.NotEqual(a, b);
        if (folders.Count > 1)
            Assert.NotEqual(b, CorpusTokenizer.Tokenize(CorpusSource.Jsonl(jsonl), fixtures.Tokenizer(folders[1]), options).Path);
        Assert.NotEqual(CorpusTokenizer.Tokenize(CorpusSource.Jsonl(jsonl), fixtures.Tokenizer(folders[0]), options with { TokenizerKey = "other" }).Path, b);
    }

    [Fact]
    public void Tokenize_TextFolder_ReadsFilesInPathOrder()
    {
        var folder = TokenizerFixtures.Folders()[0];
        var cases = TokenizerFixtures.Cases(folder).Where(c => c.Ids.Length > 0).Take(3).ToList();
        using var temp = new TempFolder();
        Directory.CreateDirectory(temp.File("docs/sub"));
        File.WriteAllText(temp.File("docs/b.txt"), cases[1].Text);
        File.WriteAllText(temp.File("docs/a.txt"), cases[0].Text);
        File.WriteAllText(temp.File("docs/sub/c.txt"), cases[2].Text);
        File.WriteAllText(temp.File("docs/ignored.md"), "not text");
        var corpus = CorpusTokenizer.Tokenize(CorpusSource.TextFiles(temp.File("docs")), fixtures.Tokenizer(folder), new TokenizationOptions { CacheDirectory = temp.File("cache") });
        Assert.Equal(cases.Select(c => c.Ids), corpus.Documents());
    }

    [Fact]
    public void Tokenize_EmptyCorpus_NamesTheFile()
    {
        using var temp = new TempFolder();
        string jsonl = temp.File("empty.jsonl");
        File.WriteAllText(jsonl, "\n\n");
        var options = new TokenizationOptions { CacheDirectory = temp.File("cache") };
        var e = Assert.Throws<InvalidDataException>(() => CorpusTokenizer.Tokenize(CorpusSource.Jsonl(jsonl), fixtures.Tokenizer(TokenizerFixtures.Folders()[0]), options));
        Assert.Contains(jsonl, e.Message);
        Assert.Empty(Directory.GetFiles(options.CacheDirectory));
        File.WriteAllText(jsonl, "{\"text\": \"\"}\n");
        Assert.Contains("no tokens", Assert.Throws<InvalidDataException>(() => CorpusTokenizer.Tokenize(CorpusSource.Jsonl(jsonl), fixtures.Tokenizer(TokenizerFixtures.Folders()[0]), options)).Message);
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Concatenate_EqualsTokenizingTheEosJoinedString_AsLongLoraDoes(string folder)
    {
        // LongLoRA: tokenizer(eos_token.join(texts)) with the fast tokenizer. Only tokenizer.json matches "</s>" in text.
        if (!File.Exists(Path.Combine(TokenizerFixtures.FolderPath(folder), "tokenizer.json"))) return;
        var tokenizer = fixtures.Tokenizer(folder);
        var texts = TokenizerFixtures.Cases(folder).Select(c => c.Text).Where(t => !t.Contains('<')).Take(12).ToList();
        string eos = tokenizer.IdToToken(tokenizer.SpecialTokens.Eos!.Value);
        int[] joined = tokenizer.Encode(string.Join(eos, texts));
        int rowLength = joined.Length + 3;
        var row = CorpusPacker.Pack(texts.Select(t => tokenizer.Encode(t, addSpecialTokens: false)), tokenizer.SpecialTokens,
            new PackingOptions { RowLength = rowLength, DocumentsPerGroup = null }).Single();
        Assert.Equal(joined, row.InputIds[..row.Length]);
    }
}
