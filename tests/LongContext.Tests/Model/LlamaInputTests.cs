using LongContext.Llama;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

/// <summary>The model's inputs: HF attention masks (padding) and the checks at the API edge.</summary>
[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class LlamaInputTests
{
    private const int Vocab = 32, Real = 5, Pad = 3;

    private static LlamaForCausalLM Model()
    {
        random.manual_seed(31);
        return new LlamaForCausalLM(LlamaTrainingTests.Tiny(vocab: Vocab), ScalarType.Float64);
    }

    private static Tensor Tokens() => randint(1, Vocab, [1, Real], dtype: ScalarType.Int64, generator: new Generator(4));

    private static Tensor Logits(LlamaForCausalLM model, Tensor ids, Tensor? mask = null, Tensor? positions = null)
    {
        using (no_grad()) return model.forward(ids, mask, positions);
    }

    [Fact]
    public void RightPadding_RealTokensGetTheUnpaddedLogits()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        model.eval();
        Tensor ids = Tokens();
        Tensor padded = cat([ids, zeros(1, Pad, dtype: ScalarType.Int64)], 1);
        Tensor mask = cat([ones(1, Real, dtype: ScalarType.Int64), zeros(1, Pad, dtype: ScalarType.Int64)], 1);
        TensorAssert.Close(Logits(model, padded, mask).narrow(1, 0, Real), Logits(model, ids), 1e-12, "right padding");
    }

    [Fact]
    public void LeftPadding_WithPositionsFromTheMask_RealTokensGetTheUnpaddedLogits()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        model.eval();
        Tensor ids = Tokens();
        Tensor padded = cat([zeros(1, Pad, dtype: ScalarType.Int64), ids], 1);
        Tensor mask = cat([zeros(1, Pad, dtype: ScalarType.Int64), ones(1, Real, dtype: ScalarType.Int64)], 1);
        Tensor logits = Logits(model, padded, mask, AttentionMasks.PositionIds(mask));
        TensorAssert.Close(logits.narrow(1, Pad, Real), Logits(model, ids), 1e-12, "left padding");
    }

    [Fact]
    public void PaddedBatch_EachRowEqualsItsOwnForward()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        model.eval();
        Tensor a = Tokens(), b = randint(1, Vocab, [1, Real + Pad], dtype: ScalarType.Int64, generator: new Generator(5));
        Tensor batch = cat([cat([zeros(1, Pad, dtype: ScalarType.Int64), a], 1), b], 0);
        Tensor mask = ones(2, Real + Pad, dtype: ScalarType.Int64);
        mask[0].narrow(0, 0, Pad).fill_(0);
        Tensor logits = Logits(model, batch, mask, AttentionMasks.PositionIds(mask));
        TensorAssert.Close(logits[0].narrow(0, Pad, Real), Logits(model, a)[0], 1e-12, "left-padded row");
        TensorAssert.Close(logits[1], Logits(model, b)[0], 1e-12, "full row");
    }

    [Fact]
    public void PositionIds_CountRealTokensFromZero()
    {
        Tensor mask = tensor(new long[,] { { 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 0 } });
        Assert.Equal(new long[] { 0, 0, 0, 1, 2, 0, 1, 2, 3, 0 }, AttentionMasks.PositionIds(mask).data<long>().ToArray());
    }

    [Fact]
    public void Loss_WithPaddingIgnoredInLabels_EqualsTheUnpaddedLoss()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        model.eval();
        Tensor ids = Tokens();
        Tensor padded = cat([ids, zeros(1, Pad, dtype: ScalarType.Int64)], 1);
        Tensor mask = cat([ones(1, Real, dtype: ScalarType.Int64), zeros(1, Pad, dtype: ScalarType.Int64)], 1);
        Tensor labels = padded.clone();
        labels.narrow(1, Real, Pad).fill_(CausalLmLoss.IgnoreIndex);
        using (no_grad())
            TensorAssert.Close(model.Loss(padded, labels, mask), model.Loss(ids, ids), 1e-12, "loss");
    }

    [Fact]
    public void Checkpointing_WithAMask_GivesTheSameGradients_Float64()
    {
        using var model = Model();
        model.train();
        Tensor ids = randint(0, Vocab, [2, 12], dtype: ScalarType.Int64, generator: new Generator(6));
        Tensor mask = ones(2, 12, dtype: ScalarType.Int64);
        mask[1].narrow(0, 8, 4).fill_(0);
        Tensor labels = ids.masked_fill(mask.eq(0), CausalLmLoss.IgnoreIndex);
        Dictionary<string, Tensor> Grads()
        {
            model.zero_grad();
            model.Loss(ids, labels, mask).backward();
            return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        }
        var plain = Grads();
        model.SetGradientCheckpointing(true);
        var checkpointed = Grads();
        foreach (var (name, g) in plain) TensorAssert.Close(checkpointed[name], g, 1e-10, $"gradient of {name}");
    }

    public static TheoryData<string, Func<Tensor>, string, string> BadIds() => new()
    {
        { "an id at the vocabulary size", () => tensor(new long[,] { { 1, Vocab } }), "inputIds", $"{Vocab}" },
        { "a negative id", () => tensor(new long[,] { { -3, 1 } }), "inputIds", "-3" },
        { "float ids", () => ones(1, 4), "inputIds", "Float32" },
        { "a 1-D id tensor", () => ones(4, dtype: ScalarType.Int64), "inputIds", "(4)" },
    };

    [Theory]
    [MemberData(nameof(BadIds))]
    public void Forward_BadTokenIds_ThrowNamingTheValue(string name, Func<Tensor> ids, string param, string fragment)
    {
        using var model = Model();
        var e = Assert.ThrowsAny<ArgumentException>(() => model.forward(ids()));
        Assert.True(e.ParamName == param, $"{name}: ParamName {e.ParamName}");
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Forward_IdOutsideTheVocabulary_NamesTheVocabularySize()
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.forward(tensor(new long[,] { { 40 } })));
        Assert.Contains("40", e.Message, StringComparison.Ordinal);
        Assert.Contains($"[0, {Vocab})", e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, Func<Tensor>, string> BadMasks() => new()
    {
        { "a mask of another length", () => ones(1, 3, dtype: ScalarType.Int64), "(1, 3)" },
        { "a float mask", () => ones(1, 4), "Float32" },
        { "a mask holding 2", () => tensor(new long[,] { { 1, 1, 2, 1 } }), "is 2" },
    };

    [Theory]
    [MemberData(nameof(BadMasks))]
    public void Forward_BadAttentionMask_ThrowsNamingIt(string name, Func<Tensor> mask, string fragment)
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentException>(() => model.forward(ones(1, 4, dtype: ScalarType.Int64), mask()));
        Assert.True(e.ParamName == "attentionMask", $"{name}: ParamName {e.ParamName}");
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Loss_LabelsOfAnotherShape_ThrowNamingBothShapes()
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentException>(() => model.Loss(ones(2, 4, dtype: ScalarType.Int64), ones(2, 3, dtype: ScalarType.Int64)));
        Assert.Equal("labels", e.ParamName);
        Assert.Contains("(2, 3)", e.Message, StringComparison.Ordinal);
        Assert.Contains("(2, 4)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Loss_FloatLabels_Throw()
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentException>(() => model.Loss(ones(1, 4, dtype: ScalarType.Int64), ones(1, 4)));
        Assert.Equal("labels", e.ParamName);
        Assert.Contains("Float32", e.Message, StringComparison.Ordinal);
    }
}
