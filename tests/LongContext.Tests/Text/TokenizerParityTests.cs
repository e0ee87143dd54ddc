using LongContext.Tests.Support;
using LongContext.Text.Tokenization;

namespace LongContext.Tests.Text;

/// <summary>
/// Every case of every tokenizer fixture folder against the reference library's own output (sentencepiece for
/// <c>tokenizer.model</c>, HF tokenizers for <c>tokenizer.json</c>): exact ids, pieces and text.
/// </summary>
[Trait(Category.Name, TextCategory.Name)]
[Trait(Category.Name, Category.Reference)]
public sealed class TokenizerParityTests(TokenizerFixtures fixtures) : IClassFixture<TokenizerFixtures>
{
    public static TheoryData<string, string> Cases() => TokenizerFixtures.AllCases();

    [Fact]
    public void FixtureSet_HasFoldersWithCases()
    {
        Assert.NotEmpty(TokenizerFixtures.Folders());
        foreach (string folder in TokenizerFixtures.Folders()) Assert.NotEmpty(TokenizerFixtures.Cases(folder));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encode_WithoutSpecialTokens_MatchesIds(string folder, string name)
    {
        var c = TokenizerFixtures.Case(folder, name);
        Assert.Equal(c.Ids, fixtures.Tokenizer(folder).Encode(c.Text, addSpecialTokens: false));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encode_WithSpecialTokens_MatchesIdsWithSpecial(string folder, string name)
    {
        var c = TokenizerFixtures.Case(folder, name);
        Assert.Equal(c.IdsWithSpecial, fixtures.Tokenizer(folder).Encode(c.Text));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void IdToToken_OfIds_MatchesTokens(string folder, string name)
    {
        var c = TokenizerFixtures.Case(folder, name);
        if (c.Tokens is null) return;   // optional in a fixture set
        var tokenizer = fixtures.Tokenizer(folder);
        Assert.Equal(c.Tokens, c.Ids.Select(tokenizer.IdToToken).ToArray());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_OfIds_MatchesDecoded(string folder, string name)
    {
        var c = TokenizerFixtures.Case(folder, name);
        if (c.Decoded is null) return;
        Assert.Equal(c.Decoded, fixtures.Tokenizer(folder).Decode(c.Ids));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_OfIdsWithSpecial_KeepingThem_MatchesDecodedWithSpecial(string folder, string name)
    {
        var c = TokenizerFixtures.Case(folder, name);
        if (c.DecodedWithSpecial is null) return;
        Assert.Equal(c.DecodedWithSpecial, fixtures.Tokenizer(folder).Decode(c.IdsWithSpecial, skipSpecialTokens: false));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_OfIdsWithSpecial_SkippingThem_MatchesDecodedSkipSpecial(string folder, string name)
    {
        var c = TokenizerFixtures.Case(folder, name);
        if (c.DecodedSkipSpecial is null) return;
        Assert.Equal(c.DecodedSkipSpecial, fixtures.Tokenizer(folder).Decode(c.IdsWithSpecial, skipSpecialTokens: true));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void IncrementalDecoder_PiecesConcatenateToWholeDecode_AndHoldNoBrokenCharacter(string folder, string name)
    {
        var c = TokenizerFixtures.Case(folder, name);
        var tokenizer = fixtures.Tokenizer(folder);
        foreach (bool skip in new[] { false, true })
        {
            var decoder = new IncrementalDecoder(tokenizer, skipSpecialTokens: skip);
            var pieces = c.IdsWithSpecial.Select(decoder.Append).ToList();
            pieces.Add(decoder.Flush());
            string whole = (skip ? c.DecodedSkipSpecial : c.DecodedWithSpecial) ?? tokenizer.Decode(c.IdsWithSpecial, skip);
            Assert.Equal(whole, string.Concat(pieces));
            if (!whole.Contains('\uFFFD'))
                foreach (string p in pieces) Assert.DoesNotContain('\uFFFD', p);
            foreach (string p in pieces) Assert.True(WellFormed(p), $"{name}: piece '{p}' splits a surrogate pair");
        }
    }

    /// <summary>No lone surrogate: a piece of streamed text never splits a character.</summary>
    internal static bool WellFormed(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return false;
        }
        return true;
    }
}
