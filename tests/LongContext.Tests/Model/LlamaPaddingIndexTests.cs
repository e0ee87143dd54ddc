using LongContext.Llama;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

/// <summary>
/// HF builds <c>embed_tokens</c> with <c>padding_idx = config.pad_token_id</c>: when the embeddings train, the pad
/// token's row gets no gradient (torch.nn.Embedding zeroes it in backward). The model here does the same.
/// </summary>
[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class LlamaPaddingIndexTests
{
    /// <summary>Tokens 3..7 and the row the pad id names, twice each.</summary>
    private static Tensor Ids(long padRow) => tensor(new long[] { 3, 4, padRow, 5, padRow, 6, 7, 3 }, [1, 8]);

    private static Tensor EmbeddingGradient(LlamaConfig config, Tensor ids)
    {
        random.manual_seed(11);
        using var model = new LlamaForCausalLM(config);
        model.train();
        model.Loss(ids, ids).backward();
        Tensor weight = model.named_parameters().Single(p => p.name == "model.embed_tokens.weight").parameter;
        return weight.grad!.clone();
    }

    [Fact]
    public void PadRow_GetsNoGradient()
    {
        using var scope = NewDisposeScope();
        Tensor grad = EmbeddingGradient(LlamaTrainingTests.Tiny() with { PadTokenId = 0 }, Ids(0));
        TensorAssert.Equal(grad[0], zeros(grad.shape[1]), "pad row gradient");
    }

    [Fact]
    public void OtherUsedRows_StillGetGradients()
    {
        using var scope = NewDisposeScope();
        Tensor grad = EmbeddingGradient(LlamaTrainingTests.Tiny() with { PadTokenId = 0 }, Ids(0));
        foreach (long row in new long[] { 3, 4, 5, 6, 7 })
            Assert.True(grad[row].abs().max().item<float>() > 0, $"row {row} has no gradient");
    }

    [Fact]
    public void WithoutPadTokenId_TheSameRowGetsAGradient()
    {
        // the contrast that makes PadRow_GetsNoGradient meaningful: the same tokens, no padding_idx
        using var scope = NewDisposeScope();
        Tensor grad = EmbeddingGradient(LlamaTrainingTests.Tiny(), Ids(0));
        Assert.True(grad[0].abs().max().item<float>() > 0);
    }

    [Fact]
    public void NegativePadTokenId_ProtectsTheLastRow()
    {
        // torch.nn.Embedding(padding_idx=-1) means row vocab - 1, as HF passes pad_token_id through
        using var scope = NewDisposeScope();
        var config = LlamaTrainingTests.Tiny() with { PadTokenId = -1 };
        Tensor grad = EmbeddingGradient(config, Ids(config.VocabSize - 1));
        TensorAssert.Equal(grad[config.VocabSize - 1], zeros(grad.shape[1]), "last row gradient");
    }
}
