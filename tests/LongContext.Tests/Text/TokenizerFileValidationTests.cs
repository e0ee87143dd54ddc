using System.Text.Json.Nodes;
using LongContext.Tests.Support;
using LongContext.Text.Tokenization;

namespace LongContext.Tests.Text;

/// <summary>
/// One test per defect <see cref="TokenizerFileFuzzTests"/> found (or reading HF tokenizers' source next to it
/// found): the exact bad input, and a message that names the file and the value. Several of these inputs made HF
/// tokenizers' Rust code panic, which aborts the test host, at load or at the first encode or decode.
/// </summary>
[Trait(Category.Name, TextCategory.Name)]
public sealed class TokenizerFileValidationTests
{
    /// <summary>A copy of a fixture folder with its <c>tokenizer.json</c> edited.</summary>
    private static TempFolder WithTokenizerJson(string fixture, Action<JsonObject> edit)
    {
        var folder = new TempFolder().CopyFrom(TokenizerFixtures.FolderPath(fixture), "cases.json");
        string path = folder.File(HfTokenizer.TokenizerJsonName);
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(root);
        File.WriteAllText(path, root.ToJsonString());
        return folder;
    }

    /// <summary>Loads, encodes and decodes (where a bad file used to abort the process); returns what Load threw.</summary>
    private static T LoadThrows<T>(TempFolder folder, params string[] named) where T : Exception
    {
        var e = Assert.Throws<T>(() =>
        {
            using var t = HfTokenizer.Load(folder.Path);
            t.Decode(t.Encode("Hello world,  a b", addSpecialTokens: true));
            for (int id = 0; id < Math.Min(t.VocabSize, 300); id++) t.Decode([id]);
        });
        Assert.Contains(folder.File(HfTokenizer.TokenizerJsonName), e.Message);
        foreach (string n in named) Assert.Contains(n, e.Message);
        return e;
    }

    [Fact]
    public void PrecompiledNormalizer_WithoutCharsmap_IsNotSupported_NotANativeAbort()
    {
        // Was: HF tokenizers panicked in its reader (normalizers/mod.rs, .expect("Precompiled")) and the process died.
        using var folder = WithTokenizerJson("hf_bytelevel_bpe", r => r["normalizer"] = new JsonObject { ["type"] = "Precompiled" });
        LoadThrows<NotSupportedException>(folder, "'normalizer'", "Precompiled");
    }

    [Fact]
    public void PrecompiledNormalizer_InsideASequence_IsNotSupported()
    {
        using var folder = WithTokenizerJson("hf_metaspace_bpe", r =>
            r["normalizer"]!["normalizers"]!.AsArray().Add(new JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = "AAAA" }));
        LoadThrows<NotSupportedException>(folder, "'normalizer.normalizers[2]'");
    }

    [Fact]
    public void ContinuingSubwordPrefix_LongerThanAMergesRightSide_IsInvalidData()
    {
        // Was: models/bpe/model.rs sliced "h"[2..] while building the merges: a panic, the process died at load.
        using var folder = WithTokenizerJson("hf_bytelevel_bpe", r => r["model"]!["continuing_subword_prefix"] = "##");
        LoadThrows<InvalidDataException>(folder, "model.merges[0]", "\"h\"", "\"##\"");
    }

    [Theory]
    [InlineData("[\"\"]", "'normalizer' must be a pipeline component")]
    [InlineData("{\"type\":\"Prepend\",\"prepend\":\"\"}", "'normalizer.prepend' is \"\"")]
    public void EmptyPrepend_OrAnUntypedArrayNormalizer_IsInvalidData(string normalizer, string message)
    {
        // Was: HF read [""] as Prepend("") (a struct from a sequence); Prepend("") panicked in
        // NormalizedString::transform_range at the first encode.
        using var folder = WithTokenizerJson("hf_bytelevel_bpe", r => r["normalizer"] = JsonNode.Parse(normalizer));
        LoadThrows<InvalidDataException>(folder, message);
    }

    [Theory]
    [InlineData("{\"String\":\"\"}")]
    [InlineData("{\"Regex\":\"a*\"}")]
    public void ReplaceNormalizer_WithAnEmptyMatchingPattern_IsInvalidData(string pattern)
    {
        // Was: the empty match made NormalizedString::transform_range index past the end: a panic at the first encode.
        using var folder = WithTokenizerJson("hf_bytelevel_bpe", r =>
            r["normalizer"] = new JsonObject { ["type"] = "Replace", ["pattern"] = JsonNode.Parse(pattern), ["content"] = "x" });
        LoadThrows<InvalidDataException>(folder, "'normalizer.pattern'", pattern, "empty string");
    }

    [Fact]
    public void TemplateProcessing_NamingAnUndefinedSpecialToken_IsInvalidData()
    {
        // Was: processors/template.rs looked the token up unchecked at encode: a panic.
        using var folder = WithTokenizerJson("hf_bytelevel_bpe", r => r["post_processor"]!["processors"]![1]!["special_tokens"] = new JsonObject());
        LoadThrows<InvalidDataException>(folder, "post_processor.processors[1].single", "<|begin_of_text|>");
    }

    [Fact]
    public void TemplateProcessing_SpecialTokenIdOutsideTheVocabulary_IsInvalidData()
    {
        // Was: encoding returned id 99999, which Decode then refused.
        using var folder = WithTokenizerJson("hf_metaspace_bpe", r => r["post_processor"]!["special_tokens"]!["<s>"]!["ids"] = new JsonArray(99999));
        LoadThrows<InvalidDataException>(folder, "post_processor.special_tokens[\"<s>\"].ids", "99999");
    }

    [Fact]
    public void TemplateProcessing_SingleUsingSequenceB_IsInvalidData()
    {
        // Was: apply_template indexed the second encoding of a single text: a panic at encode.
        using var folder = WithTokenizerJson("hf_metaspace_bpe", r => r["post_processor"]!["single"]![1]!["Sequence"]!["id"] = "B");
        LoadThrows<InvalidDataException>(folder, "post_processor.single", "sequence B");
    }

    [Fact]
    public void StripDecoder_StrippingFromTheEnd_IsNotSupported()
    {
        // Was: decoding "▁" (" " after Replace) with Strip(" ", 1, 1) sliced chars[1..0]: a panic at decode.
        using var folder = WithTokenizerJson("hf_metaspace_bpe", r => r["decoder"]!["decoders"]![3]!["stop"] = 1);
        LoadThrows<NotSupportedException>(folder, "'decoder.decoders[3].stop' is 1");
    }

    [Fact]
    public void FixedLengthPreTokenizer_OfLengthZero_IsInvalidData()
    {
        // Was: chunks(0) panicked at the first encode.
        using var folder = WithTokenizerJson("hf_metaspace_bpe", r => r["pre_tokenizer"] = new JsonObject { ["type"] = "FixedLength", ["length"] = 0 });
        LoadThrows<InvalidDataException>(folder, "'pre_tokenizer.length' is 0");
    }

    [Fact]
    public void RepeatedKey_IsInvalidData_NotArgumentException()
    {
        // Was: System.Text.Json's JsonObject threw ArgumentException ("An item with the same key has already been added").
        using var folder = new TempFolder().CopyFrom(TokenizerFixtures.FolderPath("hf_metaspace_bpe"), "cases.json");
        string path = folder.File(HfTokenizer.TokenizerJsonName);
        string text = File.ReadAllText(path);
        File.WriteAllText(path, text.Replace("\"t\": ", "\"<0x64>\": ", StringComparison.Ordinal));
        Assert.NotEqual(text, File.ReadAllText(path));
        LoadThrows<InvalidDataException>(folder, "repeated key", "<0x64>");
    }

    /// <summary>
    /// An added token's id in the file that HF tokenizers does not use (it assigns the ids itself and only warns): read
    /// at HF's id, with a warning naming the file, the entry and both ids, so the table and the encoder agree.
    /// Was: the table put "&lt;|begin_of_text|&gt;" at 1500 while HF encoded it as 2000, and Decode refused its own output.
    /// </summary>
    [Theory]
    [InlineData("hf_bytelevel_bpe", 0, 1500, "<|begin_of_text|>", 2000, "not in model.vocab")]
    [InlineData("hf_metaspace_bpe", 1, 2, "<s>", 1, "its id in model.vocab")]
    public void AddedTokenId_OtherThanTheOneHfAssigns_IsReadAtHfsId_WithAWarning(string fixture, int entry, int fileId, string content, int hfId, string why)
    {
        using var folder = WithTokenizerJson(fixture, r => r["added_tokens"]![entry]!["id"] = fileId);
        using var t = HfTokenizer.Load(folder.Path);
        string warning = Assert.Single(t.Warnings, w => w.Contains($"added_tokens[{entry}]", StringComparison.Ordinal));
        foreach (string n in new[] { folder.File(HfTokenizer.TokenizerJsonName), content, $"id {fileId}", $"id {hfId}", why })
            Assert.Contains(n, warning);
        Assert.Equal(content, t.IdToToken(hfId));
        Assert.True(t.IsSpecial(hfId));
        int[] ids = t.Encode(content + "x", addSpecialTokens: false);
        Assert.Contains(hfId, ids);
        Assert.Equal(content, t.Decode([hfId]));
    }

    /// <summary>An added token with an empty content, or the content of an earlier entry, is skipped (as HF does) with a warning.</summary>
    [Fact]
    public void AddedToken_RepeatingAnEarlierOne_IsSkipped_WithAWarning()
    {
        using var folder = WithTokenizerJson("hf_bytelevel_bpe", r =>
        {
            var added = r["added_tokens"]!.AsArray();
            var copy = added[0]!.DeepClone();
            copy["id"] = 2999;
            added.Add(copy);
        });
        using var t = HfTokenizer.Load(folder.Path);
        Assert.Contains(t.Warnings, w => w.Contains("the content of an earlier entry", StringComparison.Ordinal) && w.Contains("id 2999", StringComparison.Ordinal));
        Assert.Equal("<|begin_of_text|>", t.IdToToken(2000));
        Assert.True(t.VocabSize < 2999, $"vocabulary {t.VocabSize}: the skipped entry's id is not in the table");
    }

    [Theory]
    [InlineData(2147483647)]
    [InlineData(100000000)]
    public void VocabularyId_FarPastTheTokenCount_IsInvalidData(int id)
    {
        // Was: OverflowException (an id table of int.MaxValue + 1 entries), or 800 MB for a table of 1e8 holes.
        using var folder = WithTokenizerJson("hf_metaspace_bpe", r => r["model"]!["vocab"]!["zz"] = id);
        LoadThrows<InvalidDataException>(folder, "model.vocab[\"zz\"]", $"id {id}", "dense");
    }

    [Fact]
    public void SentencePiece_RepeatedPiece_NamesTheFile()
    {
        // Was: "piece 'x' appears twice (ids ...)", naming no file.
        using var folder = new TempFolder().CopyFrom(TokenizerFixtures.FolderPath("spm_bpe"), "cases.json");
        string path = folder.File(HfTokenizer.SentencePieceModelName);
        byte[] model = File.ReadAllBytes(path);
        // A piece with the text of piece 1 ("<s>") appended (field 1, length-delimited: a piece with field 1 = text).
        byte[] text = "<s>"u8.ToArray();
        byte[] piece = [0x0A, (byte)(text.Length + 2), 0x0A, (byte)text.Length, .. text];
        File.WriteAllBytes(path, [.. model, .. piece]);
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(folder.Path));
        Assert.Contains(path, e.Message);
        Assert.Contains("'<s>' appears twice", e.Message);
    }
}
