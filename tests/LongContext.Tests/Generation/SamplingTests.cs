using LongContext.Llama.Generation;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Generation;

/// <summary>The logits processors on a fixed distribution against their closed forms, and seeded sampling.</summary>
[Trait(Category.Name, Category.Generation)]
public sealed class SamplingTests
{
    /// <summary>p = (0.5, 0.2, 0.15, 0.1, 0.05), as logits ln p.</summary>
    private static readonly double[] P = [0.5, 0.2, 0.15, 0.1, 0.05];

    private static Tensor Logits() => tensor(P.Select(v => Math.Log(v)).ToArray()).unsqueeze(0);

    private static double[] Normalized(double[] p, params int[] kept)
    {
        double mass = kept.Sum(i => p[i]);
        return p.Select((v, i) => kept.Contains(i) ? v / mass : 0).ToArray();
    }

    private static double[] Probabilities(DecodingOptions options, IReadOnlyCollection<int>? seen = null)
        => LogitsProcessing.Probabilities(Logits(), options, [seen ?? []])[0].data<double>().ToArray();

    private static void Close(double[] actual, double[] expected, string what)
        => TensorAssert.Close(tensor(actual), tensor(expected), 1e-12, what);

    public static TheoryData<string, DecodingOptions, double[]> ClosedForms() => new()
    {
        { "no processing: the distribution itself", new DecodingOptions { Greedy = false }, P },
        { "top-k 2: the two most likely, renormalized", new DecodingOptions { Greedy = false, TopK = 2 }, Normalized(P, 0, 1) },
        { "top-k past the vocabulary keeps everything", new DecodingOptions { Greedy = false, TopK = 50 }, P },
        { "top-p 0.75: smallest head reaching 0.75 is {0.5, 0.2, 0.15}", new DecodingOptions { Greedy = false, TopP = 0.75 }, Normalized(P, 0, 1, 2) },
        { "top-p 0.6: {0.5, 0.2}", new DecodingOptions { Greedy = false, TopP = 0.6 }, Normalized(P, 0, 1) },
        { "top-p 0.3: the most likely token alone", new DecodingOptions { Greedy = false, TopP = 0.3 }, Normalized(P, 0) },
        { "temperature 2: p^(1/2) renormalized", new DecodingOptions { Greedy = false, Temperature = 2 },
            P.Select(v => Math.Sqrt(v) / P.Sum(w => Math.Sqrt(w))).ToArray() },
        { "temperature 0.5 then top-k 3: p^2 over the three most likely", new DecodingOptions { Greedy = false, Temperature = 0.5, TopK = 3 },
            P.Select((v, i) => i < 3 ? v * v / (0.25 + 0.04 + 0.0225) : 0).ToArray() },
    };

    [Theory]
    [MemberData(nameof(ClosedForms))]
    public void Probabilities_MatchTheClosedForm(string name, DecodingOptions options, double[] expected)
        => Close(Probabilities(options), expected, name);

    [Fact]
    public void RepetitionPenalty_DividesPositiveAndMultipliesNegativeLogitsOfSeenTokens()
    {
        Tensor logits = tensor(new[] { 2.0, -1.0, 0.5, -3.0 }).unsqueeze(0);
        Tensor penalized = LogitsProcessing.RepetitionPenalty(logits, [new[] { 0, 1, 1 }], 2.0);
        Close(penalized[0].data<double>().ToArray(), [1.0, -2.0, 0.5, -3.0], "penalty 2 on tokens 0 and 1");
    }

    [Theory]
    [InlineData(0.0, 1, "penalty", "0")]
    [InlineData(-2.0, 1, "penalty", "-2")]
    [InlineData(double.NaN, 1, "penalty", "NaN")]
    [InlineData(double.PositiveInfinity, 1, "penalty", "must be a positive finite number")]
    [InlineData(2.0, 4, "seen", "token id 4, outside the vocabulary [0, 4)")]
    [InlineData(2.0, -1, "seen", "token id -1, outside the vocabulary [0, 4)")]
    public void RepetitionPenalty_BadPenaltyOrSeenId_ThrowsNamingIt(double penalty, int seenId, string parameter, string fragment)
    {
        // Before the check: a penalty of 0 gave inf logits, a negative one flipped their sign, NaN spread; an id
        // outside the vocabulary failed inside libtorch ("index out of range in self").
        Tensor logits = tensor(new[] { 2.0, -1.0, 0.5, -3.0 }).unsqueeze(0);
        var e = Assert.ThrowsAny<ArgumentException>(() => LogitsProcessing.RepetitionPenalty(logits, [new[] { 0, seenId }], penalty));
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TopK_KeepsTiesWithTheKthLogit()
    {
        Tensor logits = tensor(new[] { 3.0, 1.0, 1.0, 0.0 }).unsqueeze(0);
        var kept = LogitsProcessing.TopK(logits, 2)[0].data<double>().Select(double.IsFinite).ToArray();
        Assert.Equal(new[] { true, true, true, false }, kept);
    }

    [Fact]
    public void Greedy_TakesTheFirstOfEqualMaxima_AfterThePenalty()
    {
        Tensor logits = tensor(new[] { 1.0, 4.0, 4.0, 3.0 }).unsqueeze(0);
        Assert.Equal(new[] { 1 }, LogitsProcessing.Choose(logits, new DecodingOptions(), [Array.Empty<int>()], null));
        Assert.Equal(new[] { 2 }, LogitsProcessing.Choose(logits, new DecodingOptions { RepetitionPenalty = 1.5 }, [new[] { 1 }], null));
    }

    [Fact]
    public void Sampling_DrawsOnlyKeptTokens()
    {
        using var generator = new Generator(3);
        var options = new DecodingOptions { Greedy = false, TopP = 0.6 };
        var draws = Enumerable.Range(0, 200).Select(_ => LogitsProcessing.Choose(Logits(), options, [Array.Empty<int>()], generator)[0]).ToList();
        Assert.All(draws, d => Assert.InRange(d, 0, 1));
        Assert.Contains(0, draws);
        Assert.Contains(1, draws);
    }

    [Fact]
    public void SeededSampling_IsReproducible()
    {
        using var model = GenerationModels.Fixture();
        int[] prompt = GenerationModels.Prompt(6, seed: 5);
        var generator = new LlamaGenerator(model);
        DecodingOptions Options(int seed) => new() { Greedy = false, Temperature = 1.5, TopK = 40, TopP = 0.95, MaxNewTokens = 24, Seed = seed };
        var a = generator.Generate(prompt, Options(7)).TokenIds;
        var b = generator.Generate(prompt, Options(7)).TokenIds;
        var c = generator.Generate(prompt, Options(8)).TokenIds;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }
}
