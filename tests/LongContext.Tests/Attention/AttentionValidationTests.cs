using LongContext.Attention;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

[Trait(Category.Name, Category.Attention)]
public sealed class AttentionValidationTests
{
    private static (Tensor, Tensor, Tensor) Qkv(long b = 1, long h = 4, long hkv = 4, long n = 16, long d = 8)
        => (zeros(b, h, n, d), zeros(b, hkv, n, d), zeros(b, hkv, n, d));

    private static void Throws<T>(Action act, string param, params string[] fragments) where T : ArgumentException
    {
        var e = Assert.Throws<T>(act);
        Assert.Equal(param, e.ParamName);
        foreach (string f in fragments) Assert.Contains(f, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SequenceNotDivisibleByGroupSize_StatesBoth()
    {
        var (q, k, v) = Qkv(n: 100);
        Throws<ArgumentException>(() => AttentionFunctions.ShiftedSparse(q, k, v, 0.3, S2WrapPolicy.NoWrap), "sequenceLength", "100", "group size 30");
    }

    [Fact]
    public void OddGroupSize_Throws()
    {
        var (q, k, v) = Qkv(n: 18);
        Throws<ArgumentException>(() => AttentionFunctions.ShiftedSparse(q, k, v, 1.0 / 6, S2WrapPolicy.Roll), "groupSizeRatio", "group size 3", "even");
    }

    [Fact]
    public void TooSmallGroup_Throws()
    {
        var (q, k, v) = Qkv(n: 16);
        Throws<ArgumentException>(() => AttentionFunctions.ShiftedSparse(q, k, v, 0.05, S2WrapPolicy.NoWrap), "groupSizeRatio", "= 0");
    }

    [Fact]
    public void OddHeadCountInS2_Throws_ButFullAcceptsIt()
    {
        var (q, k, v) = Qkv(h: 3, hkv: 3);
        Throws<ArgumentException>(() => AttentionFunctions.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.NoWrap), "q", "3 heads", "even");
        using var o = AttentionFunctions.FullCausal(q, k, v);
        Assert.Equal(new long[] { 1, 3, 16, 8 }, o.shape);
    }

    [Fact]
    public void MismatchedShapes_Throw()
    {
        var (q, k, v) = Qkv();
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q, zeros(1, 4, 12, 8), zeros(1, 4, 12, 8)), "k", "(1, 4, 12, 8)", "(1, 4, 16, 8)");
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q, k, zeros(1, 4, 16, 4)), "v", "(1, 4, 16, 4)");
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q, zeros(1, 3, 16, 8), zeros(1, 3, 16, 8)), "k", "4 heads", "3 key/value heads");
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(zeros(4, 16, 8), k, v), "q", "4-D", "(4, 16, 8)");
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q, k, v, ones(1, 15, dtype: ScalarType.Bool)), "keyPaddingMask", "(1, 16)", "(1, 15)");
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q, k, v, ones(1, 16)), "keyPaddingMask", "Float32");
    }

    [Fact]
    public void MismatchedDtypes_Throw()
    {
        var (q, k, v) = Qkv();
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q, k.to(float64), v), "k", "Float64", "Float32");
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q.to(int32), k.to(int32), v.to(int32)), "q", "Int32");
    }

    [Fact]
    public void MismatchedDevices_Throw_WhenCudaIsPresent()
    {
        if (!cuda.is_available()) return; // nothing to mismatch on a CPU-only host
        var (q, k, v) = Qkv();
        Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q, k.cuda(), v), "k", "cuda", "cpu");
    }

    [Fact]
    public void BadDropoutOrScaleArguments_Throw()
    {
        var (q, k, v) = Qkv();
        Throws<ArgumentOutOfRangeException>(() => AttentionFunctions.FullCausal(q, k, v, dropout: 1.0), "dropout", "1");
        Throws<ArgumentOutOfRangeException>(() => AttentionFunctions.FullCausal(q, k, v, scale: -2), "scale", "-2");
    }

    [Fact]
    public void Options_ValidateWhereTheyEnter()
    {
        Throws<ArgumentOutOfRangeException>(() => _ = new AttentionOptions { GroupSizeRatio = 0 }, "GroupSizeRatio", "0");
        Throws<ArgumentOutOfRangeException>(() => _ = new AttentionOptions { GroupSizeRatio = 1.5 }, "GroupSizeRatio", "1.5");
        Throws<ArgumentOutOfRangeException>(() => _ = new AttentionOptions { Dropout = 1 }, "Dropout", "1");
        Throws<ArgumentOutOfRangeException>(() => _ = new AttentionOptions { Dropout = -0.1 }, "Dropout", "-0.1");
        Throws<ArgumentOutOfRangeException>(() => _ = new AttentionOptions { Scale = double.NaN }, "Scale", "NaN");
        Throws<ArgumentOutOfRangeException>(() => _ = new AttentionOptions { Mode = (AttentionMode)7 }, "Mode", "7");
        Throws<ArgumentOutOfRangeException>(() => _ = new AttentionOptions { WrapPolicy = (S2WrapPolicy)9 }, "WrapPolicy", "9");
        var defaults = new AttentionOptions();
        Assert.Equal((AttentionMode.Full, 0.25, S2WrapPolicy.NoWrap, 0.0, (double?)null),
            (defaults.Mode, defaults.GroupSizeRatio, defaults.WrapPolicy, defaults.Dropout, defaults.Scale));
    }
}
