using LongContext.Attention;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

/// <summary>
/// Full causal attention with more keys than queries (keys from a KV cache): the queries are the last N of M
/// positions; checked against the explicit float64 reference and against the rows of an uncached full forward.
/// </summary>
[Trait(Category.Name, Category.Attention)]
public sealed class CachedKeyAttentionTests
{
    private const double Tol = 1e-10;

    public static TheoryData<string, int, int, int> Shapes() => new()
    {
        { "one query over 12 keys (a decode step)", 1, 12, 4 },
        { "a chunk of 5 queries after 7 cached keys", 5, 12, 4 },
        { "grouped-query heads (4 over 2)", 3, 9, 2 },
        { "one key/value head", 2, 6, 1 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void QueriesAtTheEnd_MatchTheReference(string name, int n, int m, int kvHeads)
    {
        using var scope = NewDisposeScope();
        var (q, _, _) = AttentionReference.Random(2, 4, kvHeads, n, 8, seed: 3);
        var (_, k, v) = AttentionReference.Random(2, 4, kvHeads, m, 8, seed: 4);
        TensorAssert.Close(AttentionFunctions.FullCausal(q, k, v), AttentionReference.Full(q, k, v), Tol, name);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void QueriesAtTheEnd_EqualTheLastRowsOfTheUncachedCall(string name, int n, int m, int kvHeads)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.Random(2, 4, kvHeads, m, 8, seed: 5);
        var whole = AttentionFunctions.FullCausal(q, k, v);
        var tail = AttentionFunctions.FullCausal(q.narrow(2, m - n, n), k, v);
        TensorAssert.Close(tail, whole.narrow(2, m - n, n), 1e-12, name);
    }

    [Fact]
    public void PaddedCachedKeys_AreNeverAttended_AndPaddedQueriesAreZero()
    {
        using var scope = NewDisposeScope();
        var (q, _, _) = AttentionReference.Random(2, 4, 2, 3, 8, seed: 6);
        var (_, k, v) = AttentionReference.Random(2, 4, 2, 10, 8, seed: 7);
        var keep = ones(2, 10, dtype: ScalarType.Bool);
        keep[0, 0] = tensor(false);   // left padding of row 0
        keep[0, 1] = tensor(false);
        keep[1, 8] = tensor(false);   // a padded query position of row 1
        var o = AttentionFunctions.FullCausal(q, k, v, keep);
        TensorAssert.Close(o, AttentionReference.Full(q, k, v, keep), Tol, "padded cache");
        TensorAssert.Close(o.select(0, 1).select(1, 1), zeros(4, 8, dtype: float64), 0, "padded query row");
    }

    [Fact]
    public void ShiftedSparse_RefusesCachedKeys()
    {
        var (q, _, _) = AttentionReference.Random(1, 4, 4, 8, 8);
        var (_, k, v) = AttentionReference.Random(1, 4, 4, 16, 8);
        var e = Assert.Throws<ArgumentException>(() => AttentionFunctions.ShiftedSparse(q, k, v, 0.25, S2WrapPolicy.NoWrap));
        Assert.Equal("k", e.ParamName);
        Assert.Contains("16", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FewerKeysThanQueries_Throws()
    {
        var (q, _, _) = AttentionReference.Random(1, 4, 4, 8, 8);
        var (_, k, v) = AttentionReference.Random(1, 4, 4, 6, 8);
        var e = Assert.Throws<ArgumentException>(() => AttentionFunctions.FullCausal(q, k, v));
        Assert.Equal("k", e.ParamName);
        Assert.Contains("(1, 4, 6, 8)", e.Message, StringComparison.Ordinal);
    }
}
