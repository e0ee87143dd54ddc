using LongContext.Llama.Generation;
using LongContext.Tests.Support;
using LongContext.Text.Tokenization;
using static TorchSharp.torch;

namespace LongContext.Tests.Generation;

/// <summary>
/// Batches, stop conditions and streamed text. Text tests run a scripted model (greedy decoding follows a given token
/// chain) with the fixture SentencePiece-style tokenizer and LongContext.Text's incremental decoder, so the text that
/// must come out is known in advance.
/// </summary>
[Trait(Category.Name, Category.Generation)]
[Collection(GlobalRngCollection.Name)]
public sealed class StreamingTests
{
    private const string Text = "Cost5€, yes 🎉then more words.";

    private static HfTokenizer Tokenizer() => HfTokenizer.Load(Path.Combine(Fixtures.Folder("tokenizers"), "hf_metaspace_bpe"));

    /// <summary>The text's ids (without BOS); the first is the prompt, the model generates the rest.</summary>
    private static int[] Chain(HfTokenizer tokenizer)
    {
        int[] ids = tokenizer.Encode(Text, addSpecialTokens: false);
        Assert.True(ids.Distinct().Count() == ids.Length, "the scripted text must not repeat a token: " + string.Join(" ", ids));
        return ids;
    }

    [Fact]
    public void LeftPaddedBatch_EqualsGeneratingEachRowAlone()
    {
        using var model = GenerationModels.Fixture();
        int[][] prompts = [GenerationModels.Prompt(5, seed: 11), GenerationModels.Prompt(9, seed: 12), GenerationModels.Prompt(3, seed: 13)];
        var options = new DecodingOptions { MaxNewTokens = 12 };
        var (batch, batchLogits) = GenerationModels.GenerateWithLogits(model, prompts, options);
        for (int row = 0; row < prompts.Length; row++)
        {
            var (alone, aloneLogits) = GenerationModels.GenerateWithLogits(model, [prompts[row]], options);
            Assert.Equal(alone[0].TokenIds, batch[row].TokenIds);
            for (int step = 0; step < 12; step++)
                TensorAssert.Close(batchLogits[step][row], aloneLogits[step][0], 1e-5, $"row {row} step {step}");
        }
    }

    [Fact]
    public void StreamedPieces_AreWholeCharacters_AndConcatenateToTheText()
    {
        using var tokenizer = Tokenizer();
        int[] chain = Chain(tokenizer);
        Assert.True(chain.Length > Text.Length / 2, "the text should need byte-fallback pieces for € and 🎉");
        using var model = GenerationModels.Scripted(tokenizer.VocabSize, chain);
        var pieces = new LlamaGenerator(model).Stream([chain[0]], new DecodingOptions { MaxNewTokens = chain.Length - 1 }, tokenizer).ToList();
        Assert.Equal(chain.Skip(1), pieces.Select(p => p.TokenId));
        Assert.DoesNotContain(pieces, p => p.Text.Contains('\uFFFD') || (p.Text.Length > 0 && char.IsHighSurrogate(p.Text[^1])));
        Assert.Equal(tokenizer.Decode(chain.Skip(1).ToArray()), string.Concat(pieces.Select(p => p.Text)));
        Assert.Equal(FinishReason.MaxNewTokens, pieces[^1].Finish);
    }

    /// <summary>
    /// A model whose vocabulary is padded past its tokenizer's (Qwen2: 151,936 rows for 151,665 tokens) may generate an
    /// id the tokenizer has no token for: it is kept in the ids and adds no text, as HF's decode skips ids without a
    /// token. Reference: the tokenizer's whole decode of the chain without those ids (its ids checked against HF
    /// tokenizers by the tokenizer fixtures). One padded id follows the first generated token, one sits inside the
    /// byte-fallback pieces of a multi-byte character.
    /// </summary>
    [Fact]
    public void IdsPastTheTokenizersVocabulary_AreKept_AndAddNoText()
    {
        using var tokenizer = Tokenizer();
        int[] text = Chain(tokenizer);
        int v = tokenizer.VocabSize;
        int euro = Array.FindIndex(text, id => tokenizer.Decode([id]).Contains('\uFFFD'));
        Assert.True(euro > 2, "the text should hold a byte-fallback character after its first tokens");
        var chain = text.ToList();
        chain.Insert(euro + 1, v + 5);   // between two bytes of one character
        chain.Insert(2, v + 2);
        using var model = GenerationModels.Scripted(v + 8, chain);
        var pieces = new LlamaGenerator(model).Stream([chain[0]], new DecodingOptions { MaxNewTokens = chain.Count - 1 }, tokenizer).ToList();
        Assert.Equal(chain.Skip(1), pieces.Select(p => p.TokenId));
        Assert.Equal(tokenizer.Decode(text.Skip(1).ToArray()), string.Concat(pieces.Select(p => p.Text)));
        Assert.Equal("", pieces.Single(p => p.TokenId == v + 2).Text);
        Assert.Equal(FinishReason.MaxNewTokens, pieces[^1].Finish);
    }

    public static TheoryData<string, string> StopStrings() => new()
    {
        { "a stop string inside one token's text", "then" },
        { "a stop string spanning several tokens", "n mo" },
        { "a stop string right after a multi-byte character", "🎉th" },
        { "a stop string that is a multi-byte character", "€" },
    };

    [Theory]
    [MemberData(nameof(StopStrings))]
    public void StopString_CutsTheTextExactlyBeforeIt(string name, string stop)
    {
        using var tokenizer = Tokenizer();
        int[] chain = Chain(tokenizer);
        using var model = GenerationModels.Scripted(tokenizer.VocabSize, chain);
        string full = tokenizer.Decode(chain.Skip(1).ToArray());
        var options = new DecodingOptions { MaxNewTokens = chain.Length - 1, StopStrings = [stop, "never appears"] };
        var pieces = new LlamaGenerator(model).Stream([chain[0]], options, tokenizer).ToList();
        string text = string.Concat(pieces.Select(p => p.Text));
        Assert.True(text == full[..full.IndexOf(stop, StringComparison.Ordinal)], $"{name}: got \"{text}\"");
        Assert.Equal(FinishReason.StopString, pieces[^1].Finish);
        // The row ends with the token that completed the stop string.
        string upToLast = tokenizer.Decode(chain.Skip(1).Take(pieces.Count).ToArray());
        string beforeLast = tokenizer.Decode(chain.Skip(1).Take(pieces.Count - 1).ToArray());
        Assert.Contains(stop, upToLast, StringComparison.Ordinal);
        Assert.DoesNotContain(stop, beforeLast, StringComparison.Ordinal);
    }

    [Fact]
    public void StopToken_EndsTheRowAsItsLastToken()
    {
        using var tokenizer = Tokenizer();
        int[] chain = Chain(tokenizer);
        using var model = GenerationModels.Scripted(tokenizer.VocabSize, chain);
        var result = new LlamaGenerator(model).Generate([chain[0]], new DecodingOptions { MaxNewTokens = 30, StopTokenIds = [chain[4]] }, tokenizer);
        Assert.Equal(chain.Skip(1).Take(4), result.TokenIds);
        Assert.Equal(FinishReason.StopToken, result.Finish);
        Assert.Equal(tokenizer.Decode(chain.Skip(1).Take(3).ToArray()), result.Text);
    }

    [Fact]
    public void Batch_RowsStopIndependently()
    {
        using var tokenizer = Tokenizer();
        int[] chain = Chain(tokenizer);
        using var model = GenerationModels.Scripted(tokenizer.VocabSize, chain);
        var results = new LlamaGenerator(model).GenerateBatch([[chain[0]], chain.Take(5).ToArray()],
            new DecodingOptions { MaxNewTokens = 6, StopTokenIds = [chain[3]] });
        Assert.Equal(chain.Skip(1).Take(3), results[0].TokenIds);
        Assert.Equal(FinishReason.StopToken, results[0].Finish);
        Assert.Equal(chain.Skip(5).Take(6), results[1].TokenIds);
        Assert.Equal(FinishReason.MaxNewTokens, results[1].Finish);
    }

    [Fact]
    public void Batch_WithATokenizer_DecodesEveryRowOnItsOwn()
    {
        using var tokenizer = Tokenizer();
        int[] chain = Chain(tokenizer);
        using var model = GenerationModels.Scripted(tokenizer.VocabSize, chain);
        var results = new LlamaGenerator(model).GenerateBatch([[chain[0]], chain.Take(5).ToArray()], new DecodingOptions { MaxNewTokens = 6 }, tokenizer);
        Assert.Equal(chain.Skip(1).Take(6), results[0].TokenIds);
        Assert.Equal(chain.Skip(5).Take(6), results[1].TokenIds);
        for (int row = 0; row < 2; row++)
            Assert.Equal(tokenizer.Decode(results[row].TokenIds.ToArray(), skipSpecialTokens: true), results[row].Text);
    }

    [Fact]
    public async Task StreamAsync_YieldsTheSameTokensAsStream()
    {
        using var model = GenerationModels.Fixture();
        int[] prompt = GenerationModels.Prompt(7, seed: 14);
        var generator = new LlamaGenerator(model);
        var options = new DecodingOptions { MaxNewTokens = 10 };
        var expected = generator.Stream(prompt, options).Select(t => t.TokenId).ToList();
        var actual = new List<int>();
        await foreach (var token in generator.StreamAsync(prompt, options)) actual.Add(token.TokenId);
        Assert.Equal(expected, actual);
    }
}
