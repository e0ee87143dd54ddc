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

    [Theory]
    [InlineData("true", LoraInit.KaimingUniform)]
    [InlineData("gaussian (applies to Linear only)", LoraInit.Gaussian)]
    public void ResetInits_ZeroAAndDrawBStandardNormal(string init, LoraInit mode)
    {
        using var layer = new LoraEmbedding(nn.Embedding(500, 40), new LoraOptions { Rank = 8, Init = mode });
        Assert.True(layer.LoraA("default").abs().max().item<float>() == 0, $"{init}: A must start at zero");
        Assert.InRange(layer.LoraB("default").std().item<float>(), 0.9, 1.1);   // 320 draws of N(0, 1)
    }

    [Fact]
    public void RandomInit_DrawsAStandardNormal()
    {
        using var layer = new LoraEmbedding(nn.Embedding(500, 40), new LoraOptions { Rank = 8, Init = LoraInit.Random });
        Assert.InRange(layer.LoraA("default").std().item<float>(), 0.95, 1.05);   // 4,000 draws of N(0, 1)
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
