using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.Tests.Support;
using LongContext.Text.Tokenization;

namespace LongContext.Tests.Text;

/// <summary>
/// What <see cref="HfTokenizer.Load"/> reads from a folder besides the pipeline: special ids and vocabulary size
/// (checked against the files read here independently, and against the references' BOS placement), both
/// <c>tokenizer_config.json</c> shapes, generation stop ids, and clear errors for missing or unsupported files.
/// </summary>
[Trait(Category.Name, TextCategory.Name)]
public sealed class TokenizerLoadingTests(TokenizerFixtures fixtures) : IClassFixture<TokenizerFixtures>
{
    public static TheoryData<string> Folders() => TokenizerFixtures.AllFolders();

    private static string? ConfigToken(string folder, string field)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        var node = JsonNode.Parse(File.ReadAllText(path))![field];
        return node switch { JsonValue v => v.GetValue<string>(), JsonObject o => o["content"]!.GetValue<string>(), _ => null };
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void SpecialTokens_Bos_IsWhatTheReferencePutsFirst(string folder)
    {
        // The reference adds exactly BOS in front: ids_with_special = [BOS] + ids.
        var withBos = TokenizerFixtures.Cases(folder).First(c => c.IdsWithSpecial.Length == c.Ids.Length + 1 && c.IdsWithSpecial[1..].SequenceEqual(c.Ids));
        Assert.Equal(withBos.IdsWithSpecial[0], fixtures.Tokenizer(folder).SpecialTokens.Bos);
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void SpecialTokens_BosAndEos_AreTheTokensTokenizerConfigNames(string folder)
    {
        string dir = TokenizerFixtures.FolderPath(folder);
        var tokenizer = fixtures.Tokenizer(folder);
        if (ConfigToken(dir, "bos_token") is { } bos) Assert.Equal(bos, tokenizer.IdToToken(tokenizer.SpecialTokens.Bos!.Value));
        if (ConfigToken(dir, "eos_token") is { } eos) Assert.Equal(eos, tokenizer.IdToToken(tokenizer.SpecialTokens.Eos!.Value));
        if (!File.Exists(Path.Combine(dir, "generation_config.json")) && !File.Exists(Path.Combine(dir, "config.json")))
            Assert.Equal(tokenizer.SpecialTokens.Eos is { } e ? [e] : [], tokenizer.SpecialTokens.StopIds);
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void VocabSize_IsOneMoreThanTheLargestIdInTokenizerJson(string folder)
    {
        string path = Path.Combine(TokenizerFixtures.FolderPath(folder), "tokenizer.json");
        var tokenizer = fixtures.Tokenizer(folder);
        if (File.Exists(path))
        {
            var root = JsonNode.Parse(File.ReadAllText(path))!;
            int max = root["model"]!["vocab"]!.AsObject().Max(kv => kv.Value!.GetValue<int>());
            if (root["added_tokens"] is JsonArray added && added.Count > 0) max = Math.Max(max, added.Max(a => a!["id"]!.GetValue<int>()));
            Assert.Equal(max + 1, tokenizer.VocabSize);
        }
        _ = tokenizer.IdToToken(tokenizer.VocabSize - 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.IdToToken(tokenizer.VocabSize));
        Assert.All(TokenizerFixtures.Cases(folder), c => Assert.All(c.IdsWithSpecial, id => Assert.InRange(id, 0, tokenizer.VocabSize - 1)));
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Load_WithTheOtherTokenizerConfigShape_GivesTheSameIds(string folder)
    {
        // Swap in every other folder's tokenizer_config.json whose special tokens this vocabulary has.
        string dir = TokenizerFixtures.FolderPath(folder);
        var reference = fixtures.Tokenizer(folder);
        foreach (string other in TokenizerFixtures.Folders().Where(f => f != folder))
        {
            string otherConfig = Path.Combine(TokenizerFixtures.FolderPath(other), "tokenizer_config.json");
            if (!File.Exists(otherConfig) || ConfigToken(TokenizerFixtures.FolderPath(other), "bos_token") != ConfigToken(dir, "bos_token")) continue;
            using var temp = new TempFolder().CopyFrom(dir, "tokenizer_config.json");
            File.Copy(otherConfig, temp.File("tokenizer_config.json"));
            using var swapped = HfTokenizer.Load(temp.Path);
            Assert.Equal(reference.SpecialTokens, swapped.SpecialTokens, SpecialIdsComparer.Instance);
            foreach (var c in TokenizerFixtures.Cases(folder)) Assert.Equal(c.IdsWithSpecial, swapped.Encode(c.Text));
        }
    }

    [Fact]
    public void ModelMaxLength_OfTheNoLimitSentinel_IsNull_AndAnIntegerIsKept()
    {
        string spm = SpmFolder();
        using var temp = new TempFolder().CopyFrom(spm, "tokenizer_config.json");
        File.WriteAllText(temp.File("tokenizer_config.json"), """{"model_max_length": 1000000000000000019884624838656, "add_bos_token": true}""");
        using (var t = HfTokenizer.Load(temp.Path)) Assert.Null(t.ModelMaxLength);
        File.WriteAllText(temp.File("tokenizer_config.json"), """{"model_max_length": 4096}""");
        using (var t = HfTokenizer.Load(temp.Path)) Assert.Equal(4096, t.ModelMaxLength);
    }

    /// <summary>Invalid UTF-8 inside a string of tokenizer_config.json: was an InvalidOperationException from System.Text.Json when the string was read.</summary>
    [Fact]
    public void TokenizerConfig_WithInvalidUtf8InAString_IsInvalidData_NamingTheFile()
    {
        using var temp = new TempFolder().CopyFrom(SpmFolder(), "tokenizer_config.json");
        string path = temp.File("tokenizer_config.json");
        File.WriteAllBytes(path, [.. "{\"bos_token\": \"<s"u8, 0xC3, 0x28, .. ">\", \"add_bos_token\": true}"u8]);
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(temp.Path));
        Assert.Contains(path, e.Message);
        Assert.Contains("not valid UTF-8", e.Message);
    }

    [Fact]
    public void StopIds_ComeFromGenerationConfig_AndPadFromConfigJson()
    {
        using var temp = new TempFolder().CopyFrom(SpmFolder());
        File.WriteAllText(temp.File("generation_config.json"), """{"bos_token_id": 1, "eos_token_id": [2, 0]}""");
        File.WriteAllText(temp.File("config.json"), """{"pad_token_id": 0, "eos_token_id": 2}""");
        using var t = HfTokenizer.Load(temp.Path);
        Assert.Equal([2, 0], t.SpecialTokens.StopIds);
        Assert.Equal(0, t.SpecialTokens.Pad);
    }

    [Fact]
    public void AddEosToken_AppendsEosForSentencePiece()
    {
        using var temp = new TempFolder().CopyFrom(SpmFolder(), "tokenizer_config.json");
        File.WriteAllText(temp.File("tokenizer_config.json"), """{"add_bos_token": false, "add_eos_token": true, "eos_token": "</s>"}""");
        using var t = HfTokenizer.Load(temp.Path);
        int[] body = t.Encode("Hello", addSpecialTokens: false);
        Assert.Equal([.. body, t.SpecialTokens.Eos!.Value], t.Encode("Hello"));
    }

    [Fact]
    public void Load_MissingFolder_NamesIt()
    {
        string missing = Path.Combine(Path.GetTempPath(), "no-such-folder-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<DirectoryNotFoundException>(() => HfTokenizer.Load(missing));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void Load_TheTokenizerFileInsteadOfItsFolder_SaysItIsAFile()
    {
        // Before: "Tokenizer folder '.../tokenizer.model' does not exist", though it does.
        string file = Path.Combine(SpmFolder(), "tokenizer.model");
        var e = Assert.Throws<DirectoryNotFoundException>(() => HfTokenizer.Load(file));
        Assert.Contains($"'{file}' is a file; pass the folder that holds it", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FolderWithoutTokenizerFiles_NamesBothFiles()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp.File("config.json"), "{}");
        var e = Assert.Throws<FileNotFoundException>(() => HfTokenizer.Load(temp.Path));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("tokenizer.model", e.Message);
        Assert.Contains(temp.Path, e.Message);
    }

    [Fact]
    public void Load_AskedForAFileTheFolderLacks_NamesIt()
    {
        using var temp = new TempFolder().CopyFrom(SpmFolder());
        var e = Assert.Throws<FileNotFoundException>(() => HfTokenizer.Load(temp.Path, new TokenizerLoadOptions { File = TokenizerFile.TokenizerJson }));
        Assert.Contains("tokenizer.json", e.Message);
    }

    [Fact]
    public void Load_TokenizerJsonOfAnotherModelType_IsNotSupported_NamingTheType()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp.File("tokenizer.json"), """{"model": {"type": "Unigram", "vocab": [["<unk>", 0.0]], "unk_id": 0}}""");
        var e = Assert.Throws<NotSupportedException>(() => HfTokenizer.Load(temp.Path));
        Assert.Contains("Unigram", e.Message);
        Assert.Contains(temp.File("tokenizer.json"), e.Message);
    }

    [Fact]
    public void Load_UnigramSentencePieceModel_IsNotSupported_NamingTheType()
    {
        using var temp = new TempFolder();
        // ModelProto { pieces { piece: "a" score: 0 type: NORMAL } trainer_spec { model_type: UNIGRAM } }, hand-encoded.
        byte[] proto = [0x0A, 0x0A, 0x0A, 0x01, (byte)'a', 0x15, 0, 0, 0, 0, 0x18, 0x01, 0x12, 0x02, 0x18, 0x01];
        File.WriteAllBytes(temp.File("tokenizer.model"), proto);
        var e = Assert.Throws<NotSupportedException>(() => HfTokenizer.Load(temp.Path));
        Assert.Contains("UNIGRAM", e.Message);
        Assert.Contains(temp.File("tokenizer.model"), e.Message);
    }

    [Fact]
    public void Load_TruncatedSentencePieceModel_NamesTheFile()
    {
        using var temp = new TempFolder();
        byte[] model = File.ReadAllBytes(Path.Combine(SpmFolder(), "tokenizer.model"));
        File.WriteAllBytes(temp.File("tokenizer.model"), model[..(model.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(temp.Path));
        Assert.Contains(temp.File("tokenizer.model"), e.Message);
    }

    [Fact]
    public void Load_ConfigNamingATokenOutsideTheVocabulary_NamesFieldAndToken()
    {
        using var temp = new TempFolder().CopyFrom(SpmFolder(), "tokenizer_config.json");
        File.WriteAllText(temp.File("tokenizer_config.json"), """{"bos_token": {"__type": "AddedToken", "content": "<|no-such-token|>"}}""");
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(temp.Path));
        Assert.Contains("bos_token", e.Message);
        Assert.Contains("<|no-such-token|>", e.Message);
    }

    [Fact]
    public void Load_GenerationConfigIdOutsideTheVocabulary_NamesFileAndValue()
    {
        using var temp = new TempFolder().CopyFrom(SpmFolder());
        File.WriteAllText(temp.File("generation_config.json"), """{"eos_token_id": [2, 99999999]}""");
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(temp.Path));
        Assert.Contains("generation_config.json", e.Message);
        Assert.Contains("99999999", e.Message);
    }

    [Fact]
    public void Load_NegativeIdsInConfigJson_ReadAsNone_WithAWarning()
    {
        // Llama-1 conversions (transformers 4.28) write "pad_token_id": -1; transformers warns and loads. Before: an
        // InvalidDataException, so such a folder did not load at all.
        using var temp = new TempFolder().CopyFrom(SpmFolder());
        File.WriteAllText(temp.File("config.json"), """{"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": -1}""");
        File.WriteAllText(temp.File("generation_config.json"), """{"eos_token_id": [-1], "pad_token_id": -1}""");
        using var t = HfTokenizer.Load(temp.Path);
        Assert.Null(t.SpecialTokens.Pad);
        Assert.Equal([2], t.SpecialTokens.StopIds);                    // generation_config's only id dropped: config.json's
        Assert.Contains(t.Warnings, w => w.StartsWith("config.json: 'pad_token_id' is -1", StringComparison.Ordinal));
        Assert.Contains(t.Warnings, w => w.StartsWith("generation_config.json: 'eos_token_id' is -1", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_CleanUpTokenizationSpacesAlone_IsNotAppliedToBpe_AndIsReportedAsAWarning()
    {
        // As transformers 5.7+: the flag alone is skipped for a BPE model (TokenizationSpacesTests covers the rest).
        using var temp = new TempFolder().CopyFrom(SpmFolder(), "tokenizer_config.json");
        File.WriteAllText(temp.File("tokenizer_config.json"), """{"clean_up_tokenization_spaces": true}""");
        using var t = HfTokenizer.Load(temp.Path);
        Assert.False(t.CleanUpTokenizationSpaces);
        Assert.Contains(t.Warnings, w => w.Contains("clean_up_tokenization_spaces"));
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Decode_IdOutsideTheVocabulary_NamesTheId(string folder)
    {
        var tokenizer = fixtures.Tokenizer(folder);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([1, tokenizer.VocabSize + 5]));
        Assert.Contains((tokenizer.VocabSize + 5).ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new IncrementalDecoder(tokenizer).Append(-1));
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Encode_LoneSurrogate_IsRejected(string folder)
    {
        Assert.Throws<ArgumentException>(() => fixtures.Tokenizer(folder).Encode("a\uD800b"));
    }

    /// <summary>The first fixture folder backed by a tokenizer.model (the fixture set has one).</summary>
    private static string SpmFolder()
        => TokenizerFixtures.Folders().Select(TokenizerFixtures.FolderPath)
            .First(d => File.Exists(Path.Combine(d, "tokenizer.model")) && !File.Exists(Path.Combine(d, "tokenizer.json")));

    private sealed class SpecialIdsComparer : IEqualityComparer<SpecialTokenIds>
    {
        public static readonly SpecialIdsComparer Instance = new();
        public bool Equals(SpecialTokenIds? a, SpecialTokenIds? b)
            => a is not null && b is not null && a.Bos == b.Bos && a.Eos == b.Eos && a.Pad == b.Pad && a.Unk == b.Unk && a.StopIds.SequenceEqual(b.StopIds);
        public int GetHashCode(SpecialTokenIds x) => HashCode.Combine(x.Bos, x.Eos);
    }
}
