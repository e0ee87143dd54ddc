using LongContext.Llama;
using LongContext.Llama.Evaluation;
using LongContext.Text.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Evaluation;

/// <summary>Small Llama models and tokenizers for the evaluation tests (random weights, built in code).</summary>
internal static class EvaluationModels
{
    public const int Vocab = 128;

    public static LlamaConfig Config(bool tied = false) => new()
    {
        VocabSize = Vocab,
        HiddenSize = 32,
        IntermediateSize = 64,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = 8,
        MaxPositionEmbeddings = 1024,
        TieWordEmbeddings = tied,
    };

    /// <summary>A random model (seeded); eval mode.</summary>
    public static LlamaForCausalLM Random(bool tied = false, long seed = 3)
    {
        torch.random.manual_seed(seed);
        var model = new LlamaForCausalLM(Config(tied));
        using (torch.no_grad())
            foreach (var (_, p) in model.named_parameters())
                if (p.dim() > 1) p.normal_(0, 0.2);
        model.eval();
        return model;
    }

    /// <summary>A model whose head is zero: every logit is 0, so every token has probability 1/vocab.</summary>
    public static LlamaForCausalLM Uniform()
    {
        var model = Random();
        using (torch.no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name == "lm_head.weight") p.zero_();
        return model;
    }

    public static long[] RandomTokens(int count, int seed)
    {
        var gen = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (long)gen.Next(Vocab)).ToArray();
    }
}

/// <summary>A minimal <see cref="ITextTokenizer"/> for the tests: BOS (1) then the ids <see cref="Ids"/> gives.</summary>
internal abstract class TestTokenizer : ITextTokenizer
{
    public int VocabSize => EvaluationModels.Vocab;

    public SpecialTokenIds SpecialTokens { get; } = new(1, 2, null, null, [2]);

    public int[] Encode(string text, bool addSpecialTokens = true) => addSpecialTokens ? [1, .. Ids(text)] : Ids(text).ToArray();

    protected abstract IEnumerable<int> Ids(string text);

    public bool CleanUpTokenizationSpaces => false;

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null) => throw new NotSupportedException();

    public string IdToToken(int id) => throw new NotSupportedException();

    public bool IsSpecial(int id) => id is 1 or 2;
}

/// <summary>One id per whitespace-separated word: token counts are easy to compute by hand.</summary>
internal sealed class WordTokenizer : TestTokenizer
{
    protected override IEnumerable<int> Ids(string text)
        => text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(w => 3 + (Math.Abs(w.GetHashCode(StringComparison.Ordinal)) % 100));
}

/// <summary>The ASCII code of every character (all below 128): fits the test models' vocabulary.</summary>
internal sealed class CharTokenizer : TestTokenizer
{
    protected override IEnumerable<int> Ids(string text) => text.Select(c => c < 128 ? (int)c : '?');
}
