using LongContext.Lora;
using LongContext.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

[Trait(Category.Name, Category.Lora)]
public sealed class LoraEmbeddingTests
{
    private static (Embedding Table, LoraEmbedding Layer) Make(long? paddingIdx = null, LoraInit init = LoraInit.KaimingUniform)
    {
        var emb = nn.Embedding(9, 4, dtype: float64);
        var layer = new LoraEmbedding(emb, new LoraOptions { Rank = 3, Alpha = 6, Init = init }, paddingIdx: paddingIdx);
        using (no_grad()) layer.LoraA("default").normal_();   // A = 0 at init would hide the branch
        return (emb, layer);
    }

    private static Tensor Table(Embedding emb) => emb.named_parameters(recurse: false).Single(p => p.name == "weight").parameter;

    /// <summary>W[id] + s · B · A[:, id], row by row in float64.</summary>
    private static Tensor ClosedForm(Embedding emb, LoraEmbedding layer, long[] ids, double s)
    {
        double[] W = Table(emb).detach().data<double>().ToArray();
        double[] A = layer.LoraA("default").detach().data<double>().ToArray();
        double[] B = layer.LoraB("default").detach().data<double>().ToArray();
        long v = layer.NumEmbeddings, d = layer.EmbeddingDim, r = 3;
        var y = new double[ids.Length * d];
        for (int i = 0; i < ids.Length; i++)
            for (long c = 0; c < d; c++)
            {
                double acc = W[ids[i] * d + c];
                for (long k = 0; k < r; k++) acc += s * B[c * r + k] * A[k * v + ids[i]];
                y[i * d + c] = acc;
            }
        return tensor(y, ids.Length, d);
    }

    private static readonly long[] Ids = [0, 8, 3, 3];

    [Fact]
    public void Forward_EqualsTableRowsPlusTheScaledDelta()
    {
        var (emb, layer) = Make();
        using (layer)
        using (var ids = tensor(Ids))
            TensorAssert.Close(layer.call(ids), ClosedForm(emb, layer, Ids, 2), 1e-12, "LoRA embedding");
    }

    [Fact]
    public void MergedForward_EqualsTheUnmergedForward()
    {
        var (_, layer) = Make();
        using (layer)
        using (var ids = tensor(Ids))
        {
            using var unmerged = layer.call(ids);
            layer.Merge();
            TensorAssert.Close(layer.call(ids), unmerged, 1e-12, "merged embedding");
        }
    }

    [Fact]
    public void Unmerge_RestoresTheTable()
    {
        var (emb, layer) = Make();
        using (layer)
        {
            using var before = Table(emb).detach().clone();
            layer.Merge();
            layer.Unmerge();
            TensorAssert.Close(Table(emb), before, 1e-12, "unmerged table");
        }
    }

    [Fact]
    public void PaddingRows_GetNoGradient()
    {
        var (_, layer) = Make(paddingIdx: 3);
        using (layer)
        using (var ids = tensor(Ids))
        {
            layer.call(ids).sum().backward();
            var grad = layer.LoraA("default").grad!;
            Assert.Equal(0, grad[.., 3].abs().max().item<double>());
            Assert.True(grad[.., 8].abs().max().item<double>() > 0, "a non-padding row must get a gradient");
        }
    }

    [Fact]
    public void PaddingRows_KeepTheirValue()
    {
        var (emb, layer) = Make(paddingIdx: 3);
        using (layer)
        using (var ids = tensor(Ids))
            TensorAssert.Close(layer.call(ids), ClosedForm(emb, layer, Ids, 2), 1e-12, "padding rows as F.embedding computes them");
    }

    [Fact]
    public void APaddingIdxOutsideTheTable_IsAnErrorNamingIt()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LoraEmbedding(nn.Embedding(9, 4), new LoraOptions(), paddingIdx: 9));
        Assert.Equal("paddingIdx", e.ParamName);
        Assert.Contains("[0, 9)", e.Message);
    }

    [Theory]
    [InlineData("negative", -1L)]
    [InlineData("past the last row", 9L)]
    public void IdsOutsideTheTable_AreAnErrorStatingTheIdAndTheRows(string where, long id)
    {
        var (_, layer) = Make();
        using (layer)
        using (var ids = tensor(new[] { 0L, id }))
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => layer.call(ids));
            Assert.True(e.Message.Contains($"got {id}", StringComparison.Ordinal) && e.Message.Contains("[0, 9)", StringComparison.Ordinal), $"{where}: {e.Message}");
        }
    }

    [Fact]
    public void FloatIds_AreAnErrorNamingTheDtype()
    {
        var (_, layer) = Make();
        using (layer)
        using (var ids = tensor(new[] { 1f, 2f }))
        {
            var e = Assert.Throws<ArgumentException>(() => layer.call(ids));
            Assert.Contains("Float32", e.Message);
        }
    }
}

/// <summary>
/// How a new embedding adapter is drawn (peft's <c>reset_lora_parameters</c>: A zeros, B standard normal; without
/// reset A and B randn). The draws come from TorchSharp's global generator, so each test seeds it and runs in the
/// global-RNG collection: the values are the same on every run, and the statistical bounds (4 standard errors of the
/// sample statistic for n draws of N(0, 1)) would still hold for almost any seed.
/// </summary>
[Trait(Category.Name, Category.Lora)]
[Collection(GlobalRngCollection.Name)]
public sealed class LoraEmbeddingInitTests
{
    /// <summary>Sample mean within 4/sqrt(n) of 0 and sample std within 4/sqrt(2n) of 1.</summary>
    private static void AssertStandardNormal(Tensor t, string what)
    {
        double n = t.numel(), mean = t.mean().item<float>(), std = t.std().item<float>();
        Assert.True(Math.Abs(mean) < 4 / Math.Sqrt(n), $"{what}: mean {mean} of {n} draws");
        Assert.True(Math.Abs(std - 1) < 4 / Math.Sqrt(2 * n), $"{what}: std {std} of {n} draws");
    }

    [Theory]
    [InlineData("true", LoraInit.KaimingUniform)]
    [InlineData("gaussian (applies to Linear only)", LoraInit.Gaussian)]
    public void ResetInits_ZeroAAndDrawBStandardNormal(string init, LoraInit mode)
    {
        manual_seed(1234);
        using var layer = new LoraEmbedding(nn.Embedding(500, 400), new LoraOptions { Rank = 8, Init = mode });
        Assert.True(layer.LoraA("default").abs().max().item<float>() == 0, $"{init}: A must start at zero");
        AssertStandardNormal(layer.LoraB("default"), $"{init}: B");                  // 3,200 draws
    }

    [Fact]
    public void ResetInits_AreDeterministicUnderASeed_AndDrawNewValuesUnderAnother()
    {
        Tensor B(int seed)
        {
            manual_seed(seed);
            using var layer = new LoraEmbedding(nn.Embedding(50, 16), new LoraOptions { Rank = 4 });
            return layer.LoraB("default").detach().clone();
        }
        using Tensor first = B(7), again = B(7), other = B(8);
        TensorAssert.Equal(again, first, "B under the same seed");
        Assert.True(TensorAssert.MaxAbsDiff(other, first) > 0.1, "another seed must draw another B");
    }

    [Fact]
    public void RandomInit_DrawsAStandardNormal()
    {
        manual_seed(4321);
        using var layer = new LoraEmbedding(nn.Embedding(500, 40), new LoraOptions { Rank = 8, Init = LoraInit.Random });
        AssertStandardNormal(layer.LoraA("default"), "A");                          // 4,000 draws
        AssertStandardNormal(layer.LoraB("default"), "B");                          // 320 draws
    }
}
