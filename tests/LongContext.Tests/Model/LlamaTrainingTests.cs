using LongContext.Attention;
using LongContext.Llama;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class LlamaTrainingTests
{
    internal static LlamaConfig Tiny(int vocab = 32, int layers = 2, bool tied = false) => new()
    {
        VocabSize = vocab, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = layers, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 8, RmsNormEps = 1e-6, MaxPositionEmbeddings = 256, TieWordEmbeddings = tied,
    };

    private static Dictionary<string, Tensor> Grads(LlamaForCausalLM model, Tensor ids)
    {
        model.zero_grad();
        model.Loss(ids, ids).backward();
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
    }

    public static TheoryData<string, int[]> CheckpointedLayers() => new()
    {
        { "every layer", new[] { 0, 1, 2 } },
        { "the middle layer only", new[] { 1 } },
    };

    [Theory]
    [MemberData(nameof(CheckpointedLayers))]
    public void Checkpointing_GivesTheSameGradients_Float64(string name, int[] checkpointed)
    {
        random.manual_seed(21);
        using var model = new LlamaForCausalLM(Tiny(layers: 3), ScalarType.Float64);
        model.train();
        Tensor ids = randint(0, 32, [2, 24], dtype: ScalarType.Int64);
        var plain = Grads(model, ids);
        model.SetGradientCheckpointing(true, checkpointed);
        var ckpt = Grads(model, ids);
        Assert.Equal(plain.Count, ckpt.Count);
        foreach (var (key, g) in plain)
        {
            Assert.True(g.abs().max().item<double>() > 0, $"{key}: reference gradient is zero");
            TensorAssert.Close(ckpt[key], g, 1e-10, $"{name}: gradient of {key}");
        }
    }

    [Fact]
    public void DecoderLayerOnItsOwn_CheckpointingGivesTheSameGradients_Float64()
    {
        random.manual_seed(22);
        var config = Tiny();
        using var rope = new LongContext.Rope.RotaryEmbedding(new LongContext.Rope.RotaryEmbeddingOptions(config.HeadDim, config.MaxPositionEmbeddings, config.Rope));
        using var layer = new LlamaDecoderLayer(config, ScalarType.Float64);
        layer.train();
        using var positions = arange(24, dtype: ScalarType.Int64).unsqueeze(0);
        using var rotary = RotaryPositions.Compute(rope, positions, ScalarType.Float64);
        using var x = randn([2, 24, 32], dtype: ScalarType.Float64);
        using var g = randn([2, 24, 32], dtype: ScalarType.Float64);
        Dictionary<string, Tensor> Run(bool checkpoint, out Tensor dx)
        {
            layer.GradientCheckpointing = checkpoint;
            layer.zero_grad();
            var xi = x.detach().requires_grad_(true);
            layer.forward(xi, new DecoderInputs(rotary)).backward([g]);
            dx = xi.grad!.clone();
            return layer.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        }
        var plain = Run(false, out var dxPlain);
        var ckpt = Run(true, out var dxCkpt);
        TensorAssert.Close(dxCkpt, dxPlain, 1e-10, "input gradient");
        foreach (var (name, grad) in plain)
            TensorAssert.Close(ckpt[name], grad, 1e-10, $"gradient of {name}");
    }

    [Fact]
    public void SetGradientCheckpointing_BadLayer_ThrowsNamingIt()
    {
        using var model = new LlamaForCausalLM(Tiny());
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => model.SetGradientCheckpointing(true, [5]));
        Assert.Equal("layers", ex.ParamName);
        Assert.Contains("5", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void S2TrainingAndFullEvaluation_ShareWeights()
    {
        random.manual_seed(5);
        using var model = new LlamaForCausalLM(Tiny(), ScalarType.Float64);
        Tensor ids = randint(0, 32, [1, 32], dtype: ScalarType.Int64);
        var before = model.parameters().Select(p => p.Handle).ToArray();
        model.eval();
        Tensor full;
        using (no_grad()) full = model.forward(ids);

        var s2 = new AttentionOptions { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.25 };   // G = 8
        model.ConfigureAttention(s2);
        model.train();
        Tensor sparse;
        using (no_grad()) sparse = model.forward(ids);
        model.eval();
        Tensor fullAgain;
        using (no_grad()) fullAgain = model.forward(ids);

        Assert.Equal(before, model.parameters().Select(p => p.Handle).ToArray());
        TensorAssert.Close(fullAgain, full, 0.0, "evaluation logits after a training-mode pass");
        // Positions < G/2 see the same causal prefix under S2 (both head halves), so their logits agree;
        // later positions are cut off from earlier groups and differ.
        TensorAssert.Close(sparse.narrow(1, 0, 4), full.narrow(1, 0, 4), 1e-12, "S2 vs full before G/2");
        Assert.True(TensorAssert.MaxAbsDiff(sparse.narrow(1, 16, 16), full.narrow(1, 16, 16)) > 1e-6,
            "S2 logits past the first group should differ from full attention");
    }

    [Fact]
    public void TiedEmbeddings_LmHeadIsTheEmbedding()
    {
        random.manual_seed(1);
        using var model = new LlamaForCausalLM(Tiny(tied: true), ScalarType.Float64);
        Assert.DoesNotContain(model.named_parameters(), p => p.name == "lm_head.weight");
        Tensor ids = randint(0, 32, [1, 6], dtype: ScalarType.Int64);
        using (no_grad())
        {
            Tensor logits = model.forward(ids);
            // Explicit float64: logits = hidden @ E^T, the hidden states recomputed through the public stack.
            Tensor hidden = model.Model.forward(ids, arange(6, dtype: ScalarType.Int64).unsqueeze(0), null);
            TensorAssert.Close(logits, matmul(hidden, model.Model.EmbeddingWeight.t()), 1e-12, "tied logits");
        }
    }

    [Fact]
    public void CausalLmLoss_MatchesExplicitFloat64Computation()
    {
        random.manual_seed(2);
        Tensor logits = randn([2, 5, 7], dtype: ScalarType.Float64);
        Tensor labels = randint(0, 7, [2, 5], dtype: ScalarType.Int64);
        labels[0, 3] = tensor(CausalLmLoss.IgnoreIndex);
        double sum = 0; int count = 0;
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 4; t++)
            {
                long y = labels[b, t + 1].item<long>();
                if (y == CausalLmLoss.IgnoreIndex) continue;
                double[] row = logits[b, t].data<double>().ToArray();
                double max = row.Max();
                double lse = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
                sum += lse - row[y]; count++;
            }
        TensorAssert.Close(CausalLmLoss.Compute(logits, labels), tensor(sum / count), 1e-6, "loss");
    }

    /// <summary>
    /// A seeded run with S2 attention (G = 8) and checkpointing on a task a local window can solve (every token is
    /// the previous one plus 3, mod 16, from a random start): the loss must fall from about ln(16) = 2.77 to under
    /// 1.0 in 40 AdamW steps.
    /// </summary>
    [Fact]
    public void ShortSeededRun_WithS2AndCheckpointing_LowersTheLoss()
    {
        random.manual_seed(1234);
        using var model = new LlamaForCausalLM(Tiny(vocab: 16));
        model.ConfigureAttention(new AttentionOptions { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.5 });
        model.SetGradientCheckpointing(true);
        model.train();
        using var optimizer = optim.AdamW(model.parameters(), lr: 1e-2);
        var generator = new Generator(99);
        double first = double.NaN, last = double.NaN;
        for (int step = 0; step < 40; step++)
        {
            using var scope = NewDisposeScope();
            Tensor start = randint(0, 16, [8, 1], dtype: ScalarType.Int64, generator: generator);
            Tensor ids = (start + 3 * arange(16, dtype: ScalarType.Int64).unsqueeze(0)).remainder(16);
            optimizer.zero_grad();
            Tensor loss = model.Loss(ids, ids);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.InRange(first, 2.3, 3.3);
        Assert.True(last < 1.0, $"loss after 40 steps {last:F3} (first {first:F3}) should be under 1.0");
    }
}
