using LongContext.Attention;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

[Trait(Category.Name, Category.Attention)]
public sealed class AttentionCoreTests
{
    private static readonly AttentionOptions S2Roll = new() { Mode = AttentionMode.ShiftedSparse, WrapPolicy = S2WrapPolicy.Roll };

    [Fact]
    public void TrainingMode_UsesTheTrainingOptions()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(1, 4, 2, 32, 8);
        using var core = new AttentionCore(S2Roll);
        core.train();
        TensorAssert.Close(core.forward(q, k, v), AttentionReference.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.Roll), 1e-10, "training: S2");
    }

    [Fact]
    public void EvaluationMode_DefaultsToFullCausalAttention()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(1, 4, 2, 32, 8);
        using var core = new AttentionCore(S2Roll with { Dropout = 0.2 });
        core.eval();
        Assert.Equal(S2Roll with { Mode = AttentionMode.Full }, core.EvaluationOptions);
        TensorAssert.Close(core.forward(q, k, v), AttentionReference.Full(q, k, v), 1e-10, "evaluation: full");
    }

    [Fact]
    public void Configure_SetsBothModes_EvaluationMayKeepS2()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(1, 4, 2, 32, 8);
        using var core = new AttentionCore(new AttentionOptions());
        core.Configure(S2Roll, S2Roll);
        core.eval();
        Assert.Same(S2Roll, core.ActiveOptions);
        TensorAssert.Close(core.forward(q, k, v), AttentionReference.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.Roll), 1e-10, "evaluation, S2 kept");
    }

    [Fact]
    public void KeyPaddingMask_ReachesTheFunctions()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(2, 4, 4, 16, 8);
        var keep = ones(2, 16, dtype: int64);
        keep[0, 0] = tensor(0L);
        using var core = new AttentionCore(new AttentionOptions());
        core.train();
        TensorAssert.Close(core.forward(q, k, v, keep), AttentionReference.Full(q, k, v, keep.to(ScalarType.Bool)), 1e-10, "full with padding");
    }

    [Fact]
    public void Core_HasNoParameters_AndRefusesNullOptions()
    {
        using var core = new AttentionCore(new AttentionOptions());
        Assert.Empty(core.parameters());
        Assert.Throws<ArgumentNullException>(() => core.Configure(null!));
        Assert.Throws<ArgumentNullException>(() => new AttentionCore(null!));
    }
}
