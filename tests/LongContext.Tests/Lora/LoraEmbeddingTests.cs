using LongContext.Lora;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

[Trait(Category.Name, Category.Lora)]
public sealed class LoraEmbeddingTests
{
    [Fact]
    public void Forward_EqualsTableRowsPlusScaledDelta_AndMergeMatches()
    {
        manual_seed(5);
        var emb = nn.Embedding(9, 4, dtype: float64);
        using var layer = new LoraEmbedding(emb, new LoraOptions { Rank = 3, Alpha = 6 });
        Assert.Equal(0, layer.LoraA("default").abs().max().item<double>());     // peft: A zeros, B normal
        using (no_grad()) layer.LoraA("default").normal_();
        using var ids = tensor(new long[] { 0, 8, 3, 3 });
        // closed form: W[id] + 2 · (B · A[:, id])
        var w = emb.weight!;
        var a = layer.LoraA("default");
        var b = layer.LoraB("default");
        var expected = stack(ids.data<long>().ToArray().Select(i => w[i] + 2.0 * b.matmul(a[.., (int)i])).ToArray());
        using var y = layer.call(ids);
        TensorAssert.Close(y, expected, 1e-12, "LoRA embedding");
        layer.Merge();
        TensorAssert.Close(layer.call(ids), expected, 1e-12, "merged embedding");
        layer.Unmerge();
        TensorAssert.Close(layer.call(ids), expected, 1e-12, "unmerged embedding");
    }
}
