using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>Decay / no-decay selection by name and shape (Llama-family and GPT-2 names), and the optimizer's groups.</summary>
[Trait(Category.Name, Category.Training)]
public sealed class ParameterGroupsTests
{
    public static TheoryData<string, long, NoDecayReason> DefaultRows() => new()
    {
        { "model.layers.0.self_attn.q_proj.weight", 2, NoDecayReason.None },
        { "model.layers.0.self_attn.q_proj.bias", 1, NoDecayReason.Bias },
        { "model.layers.0.self_attn.q_proj.lora_A.default.weight", 2, NoDecayReason.None },
        { "model.layers.0.self_attn.q_proj.lora_B.default.weight", 2, NoDecayReason.None },
        { "model.layers.0.input_layernorm.weight", 1, NoDecayReason.Norm },
        { "model.layers.3.post_attention_layernorm.weight", 1, NoDecayReason.Norm },
        { "model.norm.weight", 1, NoDecayReason.Norm },
        { "model.embed_tokens.weight", 2, NoDecayReason.Embedding },
        { "model.embed_tokens.base_layer.weight", 2, NoDecayReason.Embedding },
        { "model.embed_tokens.lora_embedding_A.default", 2, NoDecayReason.None },
        { "lm_head.weight", 2, NoDecayReason.None },
        { "transformer.wte.weight", 2, NoDecayReason.Embedding },
        { "transformer.h.0.ln_1.weight", 1, NoDecayReason.Norm },
        { "scale", 1, NoDecayReason.Norm },
        { "model.layers.0.mlp.gate_proj.weight", 2, NoDecayReason.None },
    };

    [Theory]
    [MemberData(nameof(DefaultRows))]
    public void Classify_DefaultRules(string name, long dims, NoDecayReason expected)
        => Assert.Equal(expected, ParameterGroups.Classify(name, dims, new WeightDecayRules()));

    [Theory]
    [InlineData("biases asked", "model.layers.0.self_attn.q_proj.bias", 1)]
    [InlineData("norms asked", "model.norm.weight", 1)]
    [InlineData("embeddings asked", "model.embed_tokens.weight", 2)]
    public void Classify_FlagsTurnDecayBackOn(string flag, string name, long dims)
    {
        var rules = new WeightDecayRules
        {
            DecayBiases = flag.StartsWith("biases", StringComparison.Ordinal),
            DecayNorms = flag.StartsWith("norms", StringComparison.Ordinal),
            DecayEmbeddings = flag.StartsWith("embeddings", StringComparison.Ordinal),
        };
        Assert.Equal(NoDecayReason.None, ParameterGroups.Classify(name, dims, rules));
    }

    [Fact]
    public void Classify_ListedFragmentsAreExemptCaseInsensitively()
    {
        var rules = new WeightDecayRules { NoDecayNameContains = ["LORA_B"] };
        Assert.Equal(NoDecayReason.Listed, ParameterGroups.Classify("model.layers.0.self_attn.q_proj.lora_B.default.weight", 2, rules));
        Assert.Equal(NoDecayReason.None, ParameterGroups.Classify("model.layers.0.self_attn.q_proj.lora_A.default.weight", 2, rules));
    }

    [Fact]
    public void Rules_RejectEmptyFragments()
    {
        var e = Assert.Throws<ArgumentException>(() => new WeightDecayRules { NoDecayNameContains = ["norm", " "] });
        Assert.Equal(nameof(WeightDecayRules.NoDecayNameContains), e.ParamName);
    }

    [Fact]
    public void Select_TakesOnlyWhatRequiresGrad_InModuleOrder()
    {
        using var model = new TinyLm(vocab: 11, hidden: 4);
        var names = TrainableParameters.Select(model).Select(p => p.Name).ToArray();
        Assert.Equal(["embed_tokens.weight", "proj.weight", "proj.bias", "norm.weight"], names);
    }

    [Fact]
    public void Select_ModuleWithNothingTrainable_IsAnError()
    {
        using var model = new TinyLm(vocab: 11, hidden: 4);
        foreach (var (_, p) in model.named_parameters()) p.requires_grad = false;
        var e = Assert.Throws<ArgumentException>(() => TrainableParameters.Select(model));
        Assert.Contains("none of the module's 5 parameters", e.Message);
    }

    /// <summary>
    /// Three updates of both groups against AdamW written out in float64 (Loshchilov and Hutter; PyTorch's form):
    /// p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps).
    /// Only the decay group shrinks by the weight decay. Tolerance 1e-13 (float64 parameters).
    /// </summary>
    [Fact]
    public void GroupedAdamW_UpdatesMatchAdamWFormula_DecayOnlyOnTheDecayGroup()
    {
        using var model = new TinyLm(vocab: 5, hidden: 3, dtype: ScalarType.Float64);
        var options = new AdamWOptions { LearningRate = 0.05, Beta1 = 0.8, Beta2 = 0.9, Epsilon = 1e-6, WeightDecay = 0.3 };
        using var optimizer = GroupedAdamW.ForModule(model, options);
        Assert.Equal(["proj.weight"], optimizer.DecayGroup.Select(p => p.Name));
        Assert.Equal(["embed_tokens.weight", "proj.bias", "norm.weight"], optimizer.NoDecayGroup.Select(p => p.Name));

        var reference = optimizer.Parameters.ToDictionary(p => p.Name, p => new RefAdam(p.Parameter.data<double>().ToArray()));
        var gen = new Random(3);
        for (int t = 1; t <= 3; t++)
        {
            foreach (NamedParameter p in optimizer.Parameters)
            {
                double[] g = Enumerable.Range(0, (int)p.Parameter.numel()).Select(_ => gen.NextDouble() - 0.5).ToArray();
                p.Parameter.grad = torch.tensor(g, dtype: ScalarType.Float64).reshape(p.Parameter.shape);
                double wd = optimizer.DecayGroup.Contains(p) ? options.WeightDecay : 0;
                reference[p.Name].Step(g, t, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, wd);
            }
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        foreach (NamedParameter p in optimizer.Parameters)
        {
            double[] actual = p.Parameter.data<double>().ToArray();
            double err = actual.Zip(reference[p.Name].P).Max(x => Math.Abs(x.First - x.Second));
            Assert.True(err <= 1e-13, $"{p.Name}: max abs error {err:E3} against the float64 AdamW formula");
            Assert.Null(p.Parameter.grad);
        }
    }

    public static TheoryData<string, WeightDecayRules> RulesAwayFromTheDefault => new()
    {
        { "DecayBiases", new WeightDecayRules { DecayBiases = true } },
        { "DecayNorms", new WeightDecayRules { DecayNorms = true } },
        { "DecayEmbeddings", new WeightDecayRules { DecayEmbeddings = true } },
        { "NoDecayNameContains [head]", new WeightDecayRules { NoDecayNameContains = ["head"] } },
    };

    [Theory]
    [MemberData(nameof(RulesAwayFromTheDefault))]
    public void GroupedAdamW_DecayRulesWithoutWeightDecay_AreRefused_AndAcceptedWithIt(string named, WeightDecayRules rules)
    {
        using var model = new TinyLm(vocab: 5, hidden: 3);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => new NamedParameter(p.name, p.parameter)).ToList();
        var e = Assert.Throws<ArgumentException>(() => new GroupedAdamW(trainable, new AdamWOptions { DecayRules = rules }));
        Assert.Equal("options", e.ParamName);
        Assert.Contains($"DecayRules ({named})", e.Message);
        Assert.Contains("WeightDecay is 0", e.Message);
        using var decaying = new GroupedAdamW(trainable, new AdamWOptions { DecayRules = rules, WeightDecay = 0.1 });
        using var plain = new GroupedAdamW(trainable, new AdamWOptions { DecayRules = new WeightDecayRules() });   // the default rules, set explicitly
    }

    [Fact]
    public void GroupedAdamW_RejectsParametersThatDoNotRequireGrad()
    {
        using var model = new TinyLm(vocab: 5, hidden: 3);
        var all = model.named_parameters().Select(p => new NamedParameter(p.name, p.parameter)).ToList();
        var e = Assert.Throws<ArgumentException>(() => new GroupedAdamW(all, new AdamWOptions()));
        Assert.Contains("'frozen'", e.Message);
    }

    [Theory]
    [InlineData(nameof(AdamWOptions.LearningRate), 0.0)]
    [InlineData(nameof(AdamWOptions.Beta1), 1.0)]
    [InlineData(nameof(AdamWOptions.Beta2), -0.1)]
    [InlineData(nameof(AdamWOptions.Epsilon), 0.0)]
    [InlineData(nameof(AdamWOptions.WeightDecay), -1e-3)]
    public void AdamWOptions_RejectOutOfRangeValuesNamingThem(string name, double value)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => name switch
        {
            nameof(AdamWOptions.LearningRate) => new AdamWOptions { LearningRate = value },
            nameof(AdamWOptions.Beta1) => new AdamWOptions { Beta1 = value },
            nameof(AdamWOptions.Beta2) => new AdamWOptions { Beta2 = value },
            nameof(AdamWOptions.Epsilon) => new AdamWOptions { Epsilon = value },
            _ => new AdamWOptions { WeightDecay = value },
        });
        Assert.Equal(name, e.ParamName);
    }

    private sealed class RefAdam(double[] p)
    {
        public double[] P { get; } = p;
        private readonly double[] m = new double[p.Length];
        private readonly double[] v = new double[p.Length];

        public void Step(double[] g, int t, double lr, double b1, double b2, double eps, double wd)
        {
            for (int i = 0; i < P.Length; i++)
            {
                P[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * g[i];
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
                double mHat = m[i] / (1 - Math.Pow(b1, t));
                double vHat = v[i] / (1 - Math.Pow(b2, t));
                P[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
        }
    }
}
