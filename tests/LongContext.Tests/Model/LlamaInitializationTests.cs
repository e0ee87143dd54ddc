using LongContext.Llama;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

/// <summary>HF's from-scratch initialization: weights N(0, std^2), biases and the padding row zero, norms one.</summary>
[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class LlamaInitializationTests
{
    private static LlamaConfig Config(int? pad = null) => new()
    {
        VocabSize = 512, HiddenSize = 64, IntermediateSize = 160, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        HeadDim = 16, MaxPositionEmbeddings = 64, TieWordEmbeddings = true, PadTokenId = pad,
    };

    [Fact]
    public void Apply_DrawsEveryWeightWithTheGivenStd_AndSetsNormsToOne()
    {
        torch.random.manual_seed(3);
        using var model = new LlamaForCausalLM(Config(pad: 0));
        LlamaInitialization.Apply(model, 0.02);
        foreach (var (name, p) in model.named_parameters())
        {
            using var noGrad = torch.no_grad();
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
            {
                Assert.True(p.eq(1).all().item<bool>(), $"{name} should be ones");
                continue;
            }
            Tensor values = name.Contains("embed_tokens", StringComparison.Ordinal) ? p.narrow(0, 1, p.shape[0] - 1) : p;
            double std = values.to(ScalarType.Float64).std().item<double>(), mean = values.to(ScalarType.Float64).mean().item<double>();
            // Sample std of >= 2,560 normal draws: relative error below 5 % at > 3 sigma (sd of s/sigma ~ 1/sqrt(2n) <= 1.4 %).
            Assert.True(Math.Abs(std / 0.02 - 1) < 0.05, $"{name}: std {std}");
            Assert.True(Math.Abs(mean) < 0.02 * 4 / Math.Sqrt(values.numel()), $"{name}: mean {mean}");
        }
        using var embed = model.named_parameters().Single(p => p.name == "model.embed_tokens.weight").parameter.detach();
        Assert.True(embed[0].eq(0).all().item<bool>(), "the padding row should be zero");
    }

    [Fact]
    public void Apply_RejectsANonPositiveStd()
    {
        using var model = new LlamaForCausalLM(Config());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => LlamaInitialization.Apply(model, 0));
        Assert.Equal("std", e.ParamName);
    }
}
