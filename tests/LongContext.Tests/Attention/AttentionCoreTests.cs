using LongContext.Attention;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

[Trait(Category.Name, Category.Attention)]
public sealed class AttentionCoreTests
{
    [Fact]
    public void ShiftedSparseCore_UsesS2InTraining_AndFullInEvaluation()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(1, 4, 2, 32, 8);
        using var core = new AttentionCore(new AttentionOptions { Mode = AttentionMode.ShiftedSparse, WrapPolicy = S2WrapPolicy.Roll });
        core.train();
        TensorAssert.Close(core.forward(q, k, v), AttentionReference.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.Roll), 1e-10, "training: S2");
        core.eval();
        TensorAssert.Close(core.forward(q, k, v), AttentionReference.Full(q, k, v), 1e-10, "evaluation: full");
        core.FullAttentionWhenEvaluating = false;
        TensorAssert.Close(core.forward(q, k, v), AttentionReference.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.Roll), 1e-10, "evaluation, S2 kept");
    }

    [Fact]
    public void Options_SwitchTheModeOnTheSameCore()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(2, 4, 4, 16, 8);
        var keep = ones(2, 16, dtype: int64);
        keep[0, 0] = tensor(0L);
        using var core = new AttentionCore(new AttentionOptions());
        core.train();
        TensorAssert.Close(core.forward(q, k, v, keep), AttentionReference.Full(q, k, v, keep.to(ScalarType.Bool)), 1e-10, "full with padding");
        core.Options = core.Options with { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.5 };
        TensorAssert.Close(core.forward(q, k, v), AttentionReference.ShiftedSparse(q, k, v, 0.5, S2WrapPolicy.NoWrap), 1e-10, "s2 after switch");
        Assert.Throws<ArgumentNullException>(() => core.Options = null!);
        Assert.Empty(core.parameters());
    }
}
