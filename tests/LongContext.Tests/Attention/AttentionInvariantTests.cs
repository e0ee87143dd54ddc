using LongContext.Attention;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

/// <summary>Properties of the attention paths, each checked against an explicit float64 masked-attention reference.</summary>
[Trait(Category.Name, Category.Attention)]
public sealed class AttentionInvariantTests
{
    private const double Tol = 1e-10;

    [Theory]
    [InlineData(S2WrapPolicy.NoWrap)]
    [InlineData(S2WrapPolicy.Roll)]
    public void ShiftedSparse_BatchOfTwo_MatchesReference(S2WrapPolicy policy)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(2, 4, 4, 32, 8);
        TensorAssert.Close(AttentionFunctions.ShiftedSparse(q, k, v, 0.25, policy), AttentionReference.ShiftedSparse(q, k, v, 0.25, policy), Tol, $"{policy}");
    }

    [Fact]
    public void NoWrap_OutputAtP_DoesNotDependOnLaterTokens()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(1, 4, 4, 32, 8);
        var before = AttentionFunctions.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.NoWrap);
        foreach (int p in new[] { 0, 3, 4, 11, 20, 27, 30 })
        {
            var (q2, k2, v2) = (q.clone(), k.clone(), v.clone());
            foreach (var t in new[] { q2, k2, v2 }) t.narrow(2, p + 1, 31 - p).add_(5.0);
            var after = AttentionFunctions.ShiftedSparse(q2, k2, v2, 0.25, S2WrapPolicy.NoWrap);
            TensorAssert.Close(after.narrow(2, 0, p + 1), before.narrow(2, 0, p + 1), Tol, $"positions 0..{p} after perturbing {p + 1}..31");
            Assert.True(TensorAssert.MaxAbsDiff(after.narrow(2, p + 1, 31 - p), before.narrow(2, p + 1, 31 - p)) > 1e-3, "the perturbation must show later");
        }
    }

    [Fact]
    public void Roll_FirstHalfGroupOfShiftedHeads_SeesTheLastTokens_TheKnownLeak()
    {
        using var scope = NewDisposeScope();
        const int n = 32, g = 8; // ratio 0.25
        var (q, k, v) = AttentionReference.Random(1, 4, 4, n, 8);
        var before = AttentionFunctions.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.Roll);
        var (k2, v2) = (k.clone(), v.clone());
        k2.narrow(2, n - g / 2, g / 2).add_(5.0);
        v2.narrow(2, n - g / 2, g / 2).add_(5.0);
        var after = AttentionFunctions.ShiftedSparse(q, k2, v2, 0.25, S2WrapPolicy.Roll);
        // Unshifted heads at the first G/2 positions: untouched. Shifted heads: changed by future tokens.
        TensorAssert.Close(after.narrow(1, 0, 2).narrow(2, 0, g / 2), before.narrow(1, 0, 2).narrow(2, 0, g / 2), Tol, "unshifted heads");
        for (int p = 0; p < g / 2; p++)
            Assert.True(TensorAssert.MaxAbsDiff(after.narrow(1, 2, 2).narrow(2, p, 1), before.narrow(1, 2, 2).narrow(2, p, 1)) > 1e-3, $"leak at position {p}");
        TensorAssert.Close(after, AttentionReference.ShiftedSparse(q, k2, v2, 0.25, S2WrapPolicy.Roll), Tol, "leaky output is the reference's");
        // NoWrap on the same input shows no leak.
        var noWrapBefore = AttentionFunctions.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.NoWrap);
        var noWrapAfter = AttentionFunctions.ShiftedSparse(q, k2, v2, 0.25, S2WrapPolicy.NoWrap);
        TensorAssert.Close(noWrapAfter.narrow(2, 0, n - g / 2), noWrapBefore.narrow(2, 0, n - g / 2), Tol, "nowrap");
    }

    [Theory]
    [InlineData(S2WrapPolicy.NoWrap)]
    [InlineData(S2WrapPolicy.Roll)]
    public void RatioOne_SingleGroup_EqualsFullCausalReference(S2WrapPolicy policy)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(2, 4, 4, 16, 8);
        TensorAssert.Close(AttentionFunctions.ShiftedSparse(q, k, v, 1.0, policy), AttentionReference.Full(q, k, v), Tol, "ratio 1");
    }

    public static TheoryData<string, int, int> HeadCounts() => new()
    {
        { "4 query heads per kv head", 8, 2 },
        { "one kv head (multi-query)", 8, 1 },
        { "an odd kv head count: a kv head straddles the two S2 halves", 6, 3 },
        { "one query head per kv head", 4, 4 },
    };

    [Theory]
    [MemberData(nameof(HeadCounts))]
    public void GroupedQueryAttention_EqualsRepeatedKeyValues(string name, int hq, int hkv)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(2, hq, hkv, 32, 8);
        var kr = k.repeat_interleave(hq / hkv, 1);
        var vr = v.repeat_interleave(hq / hkv, 1);
        TensorAssert.Close(AttentionFunctions.FullCausal(q, k, v), AttentionReference.Full(q, kr, vr), Tol, $"{name}: full");
        foreach (var policy in new[] { S2WrapPolicy.NoWrap, S2WrapPolicy.Roll })
            TensorAssert.Close(AttentionFunctions.ShiftedSparse(q, k, v, 0.25, policy), AttentionReference.ShiftedSparse(q, kr, vr, 0.25, policy), Tol, $"{name}: {policy}");
    }

    [Fact]
    public void GroupedQueryAttention_TransposedLayoutBatchTwo_MatchesReference()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(2, 8, 2, 32, 8);
        Tensor Tr(Tensor x) => x.transpose(1, 2).contiguous().transpose(1, 2);
        foreach (var policy in new[] { S2WrapPolicy.NoWrap, S2WrapPolicy.Roll })
            TensorAssert.Close(AttentionFunctions.ShiftedSparse(Tr(q), Tr(k), Tr(v), 0.25, policy), AttentionReference.ShiftedSparse(q, k, v, 0.25, policy), Tol, $"{policy}");
        TensorAssert.Close(AttentionFunctions.FullCausal(Tr(q), Tr(k), Tr(v)), AttentionReference.Full(q, k, v), Tol, "full");
    }

    public static TheoryData<string, string> PaddingCases => new()
    {
        { "Full", "NoWrap" }, { "ShiftedSparse", "NoWrap" }, { "ShiftedSparse", "Roll" },
    };

    [Theory]
    [MemberData(nameof(PaddingCases))]
    public void KeyPadding_KeepsPaddedKeysOut_AndPaddedRowsZero(string mode, string policy)
    {
        using var scope = NewDisposeScope();
        const int n = 32;
        var (q, k, v) = AttentionReference.Random(2, 4, 2, n, 8);
        var keep = ones(2, n, dtype: ScalarType.Bool);
        keep[0, TensorIndex.Slice(0, 5)] = tensor(false);    // left padding (HF batch generation)
        keep[1, TensorIndex.Slice(n - 7, n)] = tensor(false); // right padding (training batches)
        var options = new AttentionOptions { Mode = Enum.Parse<AttentionMode>(mode), WrapPolicy = Enum.Parse<S2WrapPolicy>(policy) };
        var expected = options.Mode == AttentionMode.Full
            ? AttentionReference.Full(q, k, v, keep)
            : AttentionReference.ShiftedSparse(q, k, v, options.GroupSizeRatio, options.WrapPolicy, keep);
        var actual = AttentionFunctions.Compute(q, k, v, options, keep);
        TensorAssert.Close(actual, expected, Tol, $"{mode} {policy} bool mask");
        Assert.True(actual.isfinite().all().item<bool>(), "output must be finite everywhere");
        TensorAssert.Close(AttentionFunctions.Compute(q, k, v, options, keep.to(int64)), expected, Tol, "int64 mask (HF attention_mask)");
        // Changing what sits at padded positions changes nothing at real positions.
        var (k2, v2) = (k.clone(), v.clone());
        var pad = keep.logical_not().view(2, 1, n, 1);
        k2.masked_fill_(pad, 1e3);
        v2.masked_fill_(pad, -1e3);
        var perturbed = AttentionFunctions.Compute(q, k2, v2, options, keep);
        TensorAssert.Close(perturbed * keep.view(2, 1, n, 1), actual * keep.view(2, 1, n, 1), Tol, "padded keys do not contribute");
        TensorAssert.Close(actual * pad, zeros_like(actual), 0, "padded query rows are zero");
    }

    [Fact]
    public void KeyPadding_AllOnes_EqualsNoMask()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(2, 4, 4, 16, 8);
        var options = new AttentionOptions { Mode = AttentionMode.ShiftedSparse };
        TensorAssert.Close(AttentionFunctions.Compute(q, k, v, options, ones(2, 16, dtype: int64)), AttentionReference.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.NoWrap), Tol, "all-ones mask");
    }

    [Fact]
    public void Scale_OverridesOneOverSqrtD()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(1, 4, 4, 16, 8);
        TensorAssert.Close(AttentionFunctions.FullCausal(q, k, v, scale: 0.05), AttentionReference.Full(q, k, v, scale: 0.05), Tol, "full scale");
        TensorAssert.Close(AttentionFunctions.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.NoWrap, scale: 0.05),
            AttentionReference.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.NoWrap, scale: 0.05), Tol, "s2 scale");
    }

    [Fact]
    public void Dropout_NotInEvaluation()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(1, 4, 4, 16, 8);
        var options = new AttentionOptions { Mode = AttentionMode.ShiftedSparse, Dropout = 0.5 };
        TensorAssert.Close(AttentionFunctions.Compute(q, k, v, options, training: false), AttentionReference.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.NoWrap), Tol, "eval");
    }

    [Theory]
    [InlineData(AttentionMode.Full)]
    [InlineData(AttentionMode.ShiftedSparse)]
    public void Dropout_InTraining_DropsOrRescalesTheOnlyProbabilityAtPositionZero(AttentionMode mode)
    {
        // Query 0 attends key 0 alone (probability 1) in every head and mode: with dropout p its output is either
        // 0 (dropped) or v0 / (1 - p) (kept and rescaled).
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(4, 8, 8, 16, 8);
        manual_seed(3);
        var o = AttentionFunctions.Compute(q, k, v, new AttentionOptions { Mode = mode, Dropout = 0.5 }, training: true).narrow(2, 0, 1);
        var kept = v.narrow(2, 0, 1) * 2.0;
        var isKept = (o - kept).abs().amax(new long[] { 3 }).le(1e-10);
        var isDropped = o.abs().amax(new long[] { 3 }).le(1e-10);
        Assert.True(isKept.logical_or(isDropped).all().item<bool>(), "each row is either dropped or rescaled by 1/(1-p)");
        Assert.True(isKept.any().item<bool>() && isDropped.any().item<bool>(), "with 32 rows at p = 0.5 both outcomes occur");
    }

    public static TheoryData<string, double> LowPrecision => new() { { "BFloat16", 3e-2 }, { "Float16", 5e-3 } };

    [Theory]
    [MemberData(nameof(LowPrecision))]
    public void HalfPrecisions_MatchFloat64Reference(string dtypeName, double tol)
    {
        using var scope = NewDisposeScope();
        var dtype = Enum.Parse<ScalarType>(dtypeName);
        var (q, k, v) = AttentionReference.Random(1, 4, 2, 32, 16);
        Tensor C(Tensor x) => x.to(dtype);
        foreach (var policy in new[] { S2WrapPolicy.NoWrap, S2WrapPolicy.Roll })
        {
            var o = AttentionFunctions.ShiftedSparse(C(q), C(k), C(v), 0.25, policy);
            Assert.Equal(dtype, o.dtype);
            TensorAssert.Close(o, AttentionReference.ShiftedSparse(C(q), C(k), C(v), 0.25, policy), tol, $"{dtype} {policy}");
        }
        TensorAssert.Close(AttentionFunctions.FullCausal(C(q), C(k), C(v)), AttentionReference.Full(C(q), C(k), C(v)), tol, $"{dtype} full");
    }
}
