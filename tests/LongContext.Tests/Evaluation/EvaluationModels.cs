using LongContext.Llama;
using LongContext.Llama.Evaluation;
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

/// <summary>BOS (1) then one id per whitespace-separated word: counts are easy to compute by hand.</summary>
internal sealed class WordTokenizer : IPromptTokenizer
{
    public long? BosTokenId => 1;

    public IReadOnlyList<long> Encode(string text)
        => [1, .. text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(w => 2L + (Math.Abs(w.GetHashCode(StringComparison.Ordinal)) % 100))];
}

/// <summary>BOS (1) then the ASCII code of every character (all below 128): fits the test models' vocabulary.</summary>
internal sealed class CharTokenizer : IPromptTokenizer
{
    public long? BosTokenId => 1;

    public IReadOnlyList<long> Encode(string text) => [1, .. text.Select(c => (long)(c < 128 ? c : '?'))];
}
