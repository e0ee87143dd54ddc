using LongContext.Tests.Support;
using LongContext.Text.Tokenization;

namespace LongContext.Tests.Text;

/// <summary>
/// When <see cref="HfTokenizer"/> and <see cref="IncrementalDecoder"/> apply <c>clean_up_tokenization_spaces</c>, and
/// that streaming gives the one-shot text. Reference, read from transformers' source: 4.x
/// <c>PreTrainedTokenizerFast._decode</c> (<c>src/transformers/tokenization_utils_fast.py</c>) cleans whenever the
/// flag resolves true (the call's <c>clean_up_tokenization_spaces</c>, else the config's, default false since 4.45);
/// 5.7 and later <c>TokenizersBackend._decode</c> (<c>src/transformers/tokenization_utils_tokenizers.py</c>) skips it
/// for a BPE backend model unless <c>clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output</c> is
/// set, and logs a warning. Every fixture tokenizer is BPE. The list itself: <see cref="TokenizationSpacesTests"/>.
/// </summary>
[Trait(Category.Name, TextCategory.Name)]
public sealed class CleanUpDecodingTests(TokenizerFixtures fixtures) : IClassFixture<TokenizerFixtures>
{
    public static TheoryData<string, string?, bool, bool> ConfigFlags() => new()
    {
        // tokenizer_config.json fields, whether Decode cleans, whether a warning says it is not applied
        { "flag absent", null, false, false },
        { "flag false", """{"clean_up_tokenization_spaces": false}""", false, false },
        { "flag true (Llama-3's folders): skipped for BPE, as transformers 5.7+", """{"clean_up_tokenization_spaces": true}""", false, true },
        { "flag true and the BPE key", $$"""{"clean_up_tokenization_spaces": true, "{{BpeKey}}": true}""", true, false },
        { "the BPE key alone", $$"""{"{{BpeKey}}": true}""", false, false },
        { "flag false and the BPE key", $$"""{"clean_up_tokenization_spaces": false, "{{BpeKey}}": true}""", false, false },
    };

    private const string BpeKey = "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output";

    [Theory]
    [MemberData(nameof(ConfigFlags))]
    public void Load_ReadsTheFlagsAsTransformers57AndLater(string why, string? config, bool applied, bool warned)
    {
        foreach (string folder in TokenizerFixtures.Folders())
        {
            using var temp = new TempFolder().CopyFrom(TokenizerFixtures.FolderPath(folder), "tokenizer_config.json", "cases.json");
            if (config is not null) File.WriteAllText(temp.File("tokenizer_config.json"), config);
            using var tokenizer = HfTokenizer.Load(temp.Path);
            Assert.True(applied == tokenizer.CleanUpTokenizationSpaces, $"{why} ({folder})");
            if (warned)
            {
                string warning = Assert.Single(tokenizer.Warnings);
                Assert.Contains("clean_up_tokenization_spaces=true", warning);
                Assert.Contains(BpeKey, warning);
            }
            else Assert.True(tokenizer.Warnings.Count == 0, $"{why} ({folder}): {string.Join(" | ", tokenizer.Warnings)}");

            int[] ids = tokenizer.Encode(Punctuated, addSpecialTokens: false);
            string raw = tokenizer.Decode(ids, cleanUpTokenizationSpaces: false);
            Assert.Equal(applied ? TokenizationSpaces.CleanUp(raw) : raw, tokenizer.Decode(ids));
        }
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("""{"clean_up_tokenization_spaces": true}""", true)]
    [InlineData("""{"clean_up_tokenization_spaces": true}""", false)]
    public void Load_OptionSetsTheDefaultOutright_WithoutAWarning(string? config, bool option)
    {
        foreach (string folder in TokenizerFixtures.Folders())
        {
            using var temp = new TempFolder().CopyFrom(TokenizerFixtures.FolderPath(folder), "tokenizer_config.json", "cases.json");
            if (config is not null) File.WriteAllText(temp.File("tokenizer_config.json"), config);
            using var tokenizer = HfTokenizer.Load(temp.Path, new TokenizerLoadOptions { CleanUpTokenizationSpaces = option });
            Assert.Equal(option, tokenizer.CleanUpTokenizationSpaces);
            Assert.Empty(tokenizer.Warnings);
        }
    }

    [Fact]
    public void Load_BpeKeyThatIsNotABoolean_NamesTheKey()
    {
        string folder = TokenizerFixtures.FolderPath(TokenizerFixtures.Folders()[0]);
        using var temp = new TempFolder().CopyFrom(folder, "tokenizer_config.json", "cases.json");
        File.WriteAllText(temp.File("tokenizer_config.json"), $$"""{"clean_up_tokenization_spaces": true, "{{BpeKey}}": "yes"}""");
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(temp.Path));
        Assert.Contains(BpeKey, e.Message);
    }

    private const string Punctuated = "Hello , world . Is it ? Yes ! I do n't know , I 'm sure it 's fine , we 've seen they 're here .";

    [Theory]
    [MemberData(nameof(Folders))]
    public void Decode_PerCallArgument_OverridesTheTokenizersDefault(string folder)
    {
        var tokenizer = fixtures.Tokenizer(folder);   // the fixture folders do not turn it on
        Assert.False(tokenizer.CleanUpTokenizationSpaces);
        int[] ids = tokenizer.Encode(Punctuated, addSpecialTokens: false);
        string raw = tokenizer.Decode(ids);
        Assert.Equal(Punctuated, raw);
        Assert.Equal(raw, tokenizer.Decode(ids, cleanUpTokenizationSpaces: false));
        Assert.Equal(TokenizationSpaces.CleanUp(Punctuated), tokenizer.Decode(ids, cleanUpTokenizationSpaces: true));
        Assert.Equal("Hello, world. Is it? Yes! I don't know, I'm sure it's fine, we've seen they're here.",
            tokenizer.Decode(ids, cleanUpTokenizationSpaces: true));

        using var on = HfTokenizer.Load(TokenizerFixtures.FolderPath(folder), new TokenizerLoadOptions { CleanUpTokenizationSpaces = true });
        Assert.Equal(raw, on.Decode(ids, cleanUpTokenizationSpaces: false));
    }

    public static TheoryData<string> Folders() => TokenizerFixtures.AllFolders();

    [Theory]
    [MemberData(nameof(Folders))]
    public void Fingerprint_IdentifiesTheEncodingOnly_TheCleanUpOptionDecodesDifferentlyUnderTheSameFingerprint(string folder)
    {
        var plain = fixtures.Tokenizer(folder);
        using var on = HfTokenizer.Load(TokenizerFixtures.FolderPath(folder), new TokenizerLoadOptions { CleanUpTokenizationSpaces = true });
        int[] ids = plain.Encode(Punctuated, addSpecialTokens: false);

        Assert.Equal(ids, on.Encode(Punctuated, addSpecialTokens: false));   // the same encoding: corpus caches and the demo's base stay valid
        Assert.NotEqual(plain.Decode(ids), on.Decode(ids));                  // another decoding
        Assert.Equal(plain.Fingerprint, on.Fingerprint);
    }

    // ---- streaming equals one-shot ----

    /// <summary>Decoded one token a character, so every " ." and " n't" of it is split across tokens.</summary>
    private const string Split = "Hello . Yes , no  ! so ? I do n't , I 'm ok ' . they 're ' s end .";

    [Theory]
    [MemberData(nameof(Folders))]
    public void IncrementalDecode_SpaceAndPunctuationInDifferentTokens_EqualsOneShotDecode(string folder)
    {
        using var tokenizer = HfTokenizer.Load(TokenizerFixtures.FolderPath(folder), new TokenizerLoadOptions { CleanUpTokenizationSpaces = true });
        int[] ids = OneTokenACharacter(tokenizer, "Hello", Split["Hello".Length..]);
        Assert.Equal(Split, tokenizer.Decode(ids, cleanUpTokenizationSpaces: false));
        string whole = tokenizer.Decode(ids);
        Assert.Equal(TokenizationSpaces.CleanUp(Split), whole);

        foreach (bool skip in new[] { false, true })
        {
            int[] withBos = tokenizer.SpecialTokens.Bos is { } bos ? [bos, .. ids] : ids;
            var decoder = new IncrementalDecoder(tokenizer, skipSpecialTokens: skip);
            var pieces = withBos.Select(decoder.Append).ToList();
            pieces.Add(decoder.Flush());
            Assert.Equal(tokenizer.Decode(withBos, skip), string.Concat(pieces));
            // Without the clean-up the same stream gives the spaces out as they come: the split is real.
            var plain = new IncrementalDecoder(tokenizer, skipSpecialTokens: skip, cleanUpTokenizationSpaces: false);
            var raw = withBos.Select(plain.Append).ToList();
            raw.Add(plain.Flush());
            Assert.Equal(tokenizer.Decode(withBos, skip, cleanUpTokenizationSpaces: false), string.Concat(raw));
            Assert.Contains(" ", raw);
        }
        // The decoder's argument overrides the tokenizer's default, both ways.
        var off = new IncrementalDecoder(tokenizer, cleanUpTokenizationSpaces: false);
        Assert.Equal(Split, string.Concat(ids.Select(off.Append)) + off.Flush());
        var on = new IncrementalDecoder(fixtures.Tokenizer(folder), cleanUpTokenizationSpaces: true);
        Assert.Equal(whole, string.Concat(ids.Select(on.Append)) + on.Flush());
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void IncrementalDecode_EveryFixtureCase_EqualsOneShotDecode_WithTheCleanUpOn(string folder)
    {
        using var tokenizer = HfTokenizer.Load(TokenizerFixtures.FolderPath(folder), new TokenizerLoadOptions { CleanUpTokenizationSpaces = true });
        foreach (TokenizerCase c in TokenizerFixtures.Cases(folder))
            foreach (bool skip in new[] { false, true })
            {
                var decoder = new IncrementalDecoder(tokenizer, skipSpecialTokens: skip);
                string streamed = string.Concat(c.IdsWithSpecial.Select(decoder.Append)) + decoder.Flush();
                string whole = tokenizer.Decode(c.IdsWithSpecial, skip);
                Assert.Equal(TokenizationSpaces.CleanUp(tokenizer.Decode(c.IdsWithSpecial, skip, cleanUpTokenizationSpaces: false)), whole);
                Assert.True(whole == streamed, $"{c.Name} (skip {skip}): '{streamed}' streamed, '{whole}' whole");
            }
    }

    /// <summary>
    /// The ids of <paramref name="start"/> (encoded), then one id per character of <paramref name="rest"/>: each the
    /// first non-special id whose decode after the ids so far adds exactly that character.
    /// </summary>
    private static int[] OneTokenACharacter(HfTokenizer tokenizer, string start, string rest)
    {
        var ids = new List<int>(tokenizer.Encode(start, addSpecialTokens: false));
        var seen = new Dictionary<char, int>();
        foreach (char ch in rest)
        {
            string before = tokenizer.Decode(ids.ToArray(), cleanUpTokenizationSpaces: false);
            bool Adds(int id) => !tokenizer.IsSpecial(id) && tokenizer.Decode([.. ids, id], cleanUpTokenizationSpaces: false) == before + ch;
            int found = seen.TryGetValue(ch, out int known) && Adds(known) ? known : Enumerable.Range(0, tokenizer.VocabSize).FirstOrDefault(Adds, -1);
            Assert.True(found >= 0, $"no token of '{tokenizer.SourceFile}' adds '{ch}' after '{before}'");
            ids.Add(seen[ch] = found);
        }
        return ids.ToArray();
    }
}
