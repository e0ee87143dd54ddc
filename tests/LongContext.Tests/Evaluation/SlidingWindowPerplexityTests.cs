using LongContext.Attention;
using LongContext.Llama;
using LongContext.Llama.Evaluation;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Evaluation;

/// <summary>
/// Perplexity over small random Llama models: a model with uniform logits has perplexity equal to the vocabulary
/// size under both protocols (closed form, 1e-5 relative: the loss is ln 128 in float32); the scorer agrees with the
/// model's plain loss; windows and counts follow the protocol formulas; bad inputs fail clearly.
/// </summary>
[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class SlidingWindowPerplexityTests
{
    [Theory]
    [InlineData(PerplexityProtocol.LongLora)]
    [InlineData(PerplexityProtocol.Strided)]
    public void UniformLogits_GivePerplexityEqualToTheVocabularySize(PerplexityProtocol protocol)
    {
        using var model = EvaluationModels.Uniform();
        using var tokens = TokenSequence.FromArray(EvaluationModels.RandomTokens(900, 1));
        var options = new PerplexityOptions { Lengths = [64, 128], Protocols = [protocol] };
        if (protocol == PerplexityProtocol.Strided) options = options with { Stride = 48 };
        var results = SlidingWindowPerplexity.Evaluate(new LlamaScorer(model, chunkSize: 50), tokens, options);
        Assert.Equal(2, results.Count);
        foreach (var r in results)
        {
            Assert.True(Math.Abs(r.Perplexity - EvaluationModels.Vocab) <= 1e-5 * EvaluationModels.Vocab,
                $"{protocol} L={r.Length}: perplexity {r.Perplexity:R}, expected {EvaluationModels.Vocab}");
            long expectedScored = protocol == PerplexityProtocol.LongLora
                ? ((long)Math.Ceiling((900 - r.Length) / 256.0) - 1) * (r.Length - 1)
                : 900 - 1;
            Assert.Equal(expectedScored, r.ScoredTokens);
        }
    }

    [Fact]
    public void Scorer_EqualsThePlainModelLossTimesTheTargetCount()
    {
        using var model = EvaluationModels.Random();
        long[] ids = EvaluationModels.RandomTokens(70, 2);
        long[] labels = ids.Select((t, i) => i < 30 ? -100L : t).ToArray();
        using var idTensor = torch.tensor(ids).unsqueeze(0);
        using var labelTensor = torch.tensor(labels).unsqueeze(0);
        var (sum, count) = new LlamaScorer(model, chunkSize: 16).Score(idTensor, labelTensor);
        double plain;
        using (torch.no_grad())
        using (Tensor loss = model.Loss(idTensor, labelTensor)) plain = loss.to(ScalarType.Float64).item<double>();
        Assert.Equal(40, count);                                             // labels 30..69
        Assert.True(Math.Abs(sum - plain * count) <= 1e-5 * sum, $"scorer {sum:R} vs plain loss x count {plain * count:R}");
    }

    [Fact]
    public void Strided_IsTheTokenMeanOfTheNewTokens()
    {
        using var model = EvaluationModels.Random();
        long[] ids = EvaluationModels.RandomTokens(200, 3);
        using var tokens = TokenSequence.FromArray(ids);
        var r = SlidingWindowPerplexity.Evaluate(new LlamaScorer(model), tokens,
            new PerplexityOptions { Lengths = [200], Protocols = [PerplexityProtocol.Strided], Stride = 200 }).Single();
        // One window over the whole stream: the plain model loss over all 199 predictions.
        using var idTensor = torch.tensor(ids).unsqueeze(0);
        using var noGrad = torch.no_grad();
        double plain = model.Loss(idTensor, idTensor).to(ScalarType.Float64).item<double>();
        Assert.Equal(1, r.Windows);
        Assert.True(Math.Abs(r.MeanLoss - plain) <= 1e-5 * plain, $"mean loss {r.MeanLoss:R} vs plain {plain:R}");
    }

    /// <summary>
    /// Both protocols on a random (non-uniform) model over a stream many windows long, against a float64 computation
    /// written here from the protocols' own code: LongLoRA's <c>get_as_batch</c> (starts <c>range(0, T - L, 256)</c>, the
    /// last popped, each window's L - 1 predictions) and HF's perplexity guide (<c>for begin in range(0, T, S)</c>,
    /// window [begin, min(begin + L, T)), labels before <c>end - prev_end</c> masked, stop at the end), each window's
    /// logits from a plain forward, NLL = logsumexp - logit of the next token in float64, mean over every scored token.
    /// Uniform logits cannot tell a window read from the wrong place or a context token scored; these can.
    /// Tolerance 1e-5 relative (float32 logits and the scorer's float32 chunked loss).
    /// </summary>
    [Theory]
    [InlineData(PerplexityProtocol.LongLora, 64, 0)]
    [InlineData(PerplexityProtocol.LongLora, 128, 0)]
    [InlineData(PerplexityProtocol.Strided, 64, 48)]
    [InlineData(PerplexityProtocol.Strided, 128, 100)]
    public void ManyWindows_OnARandomModel_EqualAFloat64ComputationOfTheProtocol(PerplexityProtocol protocol, int length, int stride)
    {
        using var model = EvaluationModels.Random();
        long[] ids = EvaluationModels.RandomTokens(700, 8);
        using var tokens = TokenSequence.FromArray(ids);
        var options = new PerplexityOptions { Lengths = [length], Protocols = [protocol] };
        if (protocol == PerplexityProtocol.Strided) options = options with { Stride = stride };
        var r = SlidingWindowPerplexity.Evaluate(new LlamaScorer(model, chunkSize: 37), tokens, options).Single();

        // (start, window length, first scored target position within the window), from the scripts.
        var windows = new List<(int Start, int Length, int FirstTarget)>();
        if (protocol == PerplexityProtocol.LongLora)
        {
            for (int start = 0; start < ids.Length - length; start += 256) windows.Add((start, length, 1));
            windows.RemoveAt(windows.Count - 1);
        }
        else
        {
            int previousEnd = 0;
            for (int begin = 0; begin < ids.Length; begin += stride)
            {
                int end = Math.Min(begin + length, ids.Length), targets = end - previousEnd;
                windows.Add((begin, end - begin, Math.Max(1, end - begin - targets)));
                previousEnd = end;
                if (end == ids.Length) break;
            }
        }
        Assert.True(windows.Count >= 2, "the stream must span several windows");
        double nll = 0;
        long scored = 0;
        using (torch.no_grad())
            foreach (var (start, n, firstTarget) in windows)
            {
                using var scope = NewDisposeScope();
                double[] logits = model.forward(torch.tensor(ids[start..(start + n)]).unsqueeze(0))[0].to(ScalarType.Float64).data<double>().ToArray();
                for (int t = firstTarget; t < n; t++)                    // target t is predicted from position t - 1
                {
                    var row = new ReadOnlySpan<double>(logits, (t - 1) * EvaluationModels.Vocab, EvaluationModels.Vocab);
                    double max = double.NegativeInfinity, sum = 0;
                    foreach (double v in row) max = Math.Max(max, v);
                    foreach (double v in row) sum += Math.Exp(v - max);
                    nll += max + Math.Log(sum) - row[(int)ids[start + t]];
                    scored++;
                }
            }
        double mean = nll / scored;
        Assert.Equal(windows.Count, r.Windows);
        Assert.Equal(scored, r.ScoredTokens);
        Assert.True(Math.Abs(r.MeanLoss - mean) <= 1e-5 * mean, $"{protocol} L={length}: mean loss {r.MeanLoss:R}, float64 reference {mean:R}");
        Assert.True(Math.Abs(r.Perplexity - Math.Exp(mean)) <= 1e-5 * Math.Exp(mean), $"{protocol} L={length}: perplexity {r.Perplexity:R}, reference {Math.Exp(mean):R}");
        Assert.True(Math.Abs(mean - Math.Log(EvaluationModels.Vocab)) > 0.05, $"the model's loss {mean} should be far from uniform's ln 128");
    }

    [Fact]
    public void MaxWindows_LimitsTheSample()
    {
        using var model = EvaluationModels.Uniform();
        using var tokens = TokenSequence.FromArray(EvaluationModels.RandomTokens(2000, 4));
        var r = SlidingWindowPerplexity.Evaluate(new LlamaScorer(model), tokens,
            new PerplexityOptions { Lengths = [32], Protocols = [PerplexityProtocol.LongLora], MaxWindows = 2 }).Single();
        Assert.Equal(2, r.Windows);
        Assert.Equal(2 * 31, r.ScoredTokens);
    }

    /// <summary>A scorer that fails the test if it is asked for anything: the options must be refused before any work.</summary>
    private sealed class NoWorkScorer : ICausalLmScorer
    {
        public long VocabSize => EvaluationModels.Vocab;
        public (double NllSum, long Targets) Score(Tensor inputIds, Tensor labels) => throw new InvalidOperationException("scored a window");
    }

    public static TheoryData<string, PerplexityOptions, string> UnusedSpacings => new()
    {
        { "a step for the strided protocol only", new PerplexityOptions { Lengths = [64], Protocols = [PerplexityProtocol.Strided], Step = 128 }, "Step 128" },
        { "a stride for the LongLoRA protocol only", new PerplexityOptions { Lengths = [64], Protocols = [PerplexityProtocol.LongLora], Stride = 32 }, "Stride 32" },
    };

    [Theory]
    [MemberData(nameof(UnusedSpacings))]
    public void ASpacingForAProtocolNotRun_IsRefusedBeforeAnyWindow(string name, PerplexityOptions options, string fragment)
    {
        using var tokens = TokenSequence.FromArray(EvaluationModels.RandomTokens(600, 9));
        var e = Assert.Throws<ArgumentException>(() => SlidingWindowPerplexity.Evaluate(new NoWorkScorer(), tokens, options));
        Assert.Equal("options", e.ParamName);
        Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal) && e.Message.Contains("does not run it", StringComparison.Ordinal), $"{name}: {e.Message}");
    }

    [Fact]
    public void BothSpacingsWithBothProtocols_AndADefaultSpacingSetExplicitly_AreAccepted()
    {
        using var model = EvaluationModels.Uniform();
        using var tokens = TokenSequence.FromArray(EvaluationModels.RandomTokens(600, 9));
        var both = new PerplexityOptions { Lengths = [64], Step = 128, Stride = 32, MaxWindows = 1 };
        Assert.Equal(2, SlidingWindowPerplexity.Evaluate(new LlamaScorer(model), tokens, both).Count);
        var explicitDefault = new PerplexityOptions { Lengths = [256], Protocols = [PerplexityProtocol.Strided], Step = PerplexityWindows.LongLoraStep, MaxWindows = 1 };
        Assert.Single(SlidingWindowPerplexity.Evaluate(new LlamaScorer(model), tokens, explicitDefault));
    }

    [Fact]
    public void NothingToEvaluate_IsRefused()
    {
        using var model = EvaluationModels.Random();
        var e = Assert.Throws<ArgumentException>(() => LlamaEvaluation.Run(model, new EvaluationOptions { Perplexity = null, Passkey = null }));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("nothing to evaluate", e.Message);
    }

    [Fact]
    public void AChunkSizeWithPerplexitySkipped_IsRefused()
    {
        using var model = EvaluationModels.Random();
        var e = Assert.Throws<ArgumentException>(() => LlamaEvaluation.Run(model, new EvaluationOptions { Perplexity = null, Passkey = null, ChunkSize = 7 }));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("ChunkSize 7", e.Message);
        Assert.Contains("Perplexity is null", e.Message);
    }

    [Fact]
    public void TokenOutsideTheVocabulary_IsAnErrorNamingIndexAndValue()
    {
        using var model = EvaluationModels.Random();
        long[] ids = EvaluationModels.RandomTokens(100, 5);
        ids[57] = 128;
        using var tokens = TokenSequence.FromArray(ids);
        var e = Assert.Throws<InvalidDataException>(() => SlidingWindowPerplexity.Evaluate(new LlamaScorer(model), tokens,
            new PerplexityOptions { Lengths = [100], Protocols = [PerplexityProtocol.Strided], Stride = 100 }));
        Assert.Contains("token 57", e.Message);
        Assert.Contains("id 128", e.Message);
        Assert.Contains("[0, 128)", e.Message);
    }

    [Fact]
    public void LengthNotFittingTheS2Group_IsAClearError()
    {
        using var model = EvaluationModels.Random();
        var s2 = new AttentionOptions { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.25 };
        model.ConfigureAttention(s2, evaluation: s2);
        using var tokens = TokenSequence.FromArray(EvaluationModels.RandomTokens(1000, 6));
        var options = new EvaluationOptions
        {
            Perplexity = new PerplexityOptions { Lengths = [100], Protocols = [PerplexityProtocol.LongLora] },   // G = 25: odd
            Passkey = null,
        };
        var e = Assert.Throws<ArgumentException>(() => LlamaEvaluation.Run(model, options, tokens));
        Assert.Contains("S2 attention", e.Message);
        Assert.Contains("100 tokens", e.Message);
    }

    [Fact]
    public void MissingInputs_AreNamed()
    {
        using var model = EvaluationModels.Random();
        var e = Assert.Throws<ArgumentException>(() => LlamaEvaluation.Run(model, new EvaluationOptions { Passkey = null }));
        Assert.Equal("tokens", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => LlamaEvaluation.Run(model, new EvaluationOptions { Perplexity = null }));
        Assert.Equal("tokenizer", e.ParamName);
    }
}
