using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>
/// The in-memory batch source: rows served in order, <c>batchSize</c> at a time, wrapping around; the cursor
/// <c>row=N</c> round-trips through <see cref="TensorRowBatches.Seek"/>, which rejects anything else naming the
/// parameter, the value and the format, and leaves the position unchanged. Row r of the test data holds
/// r * L + c at column c, so a served batch tells which rows it holds.
/// </summary>
[Trait(Category.Name, Category.Training)]
public sealed class TensorRowBatchesTests
{
    private const int L = 4;

    private static Tensor Data(int rows) => torch.arange(rows * L, dtype: ScalarType.Int64).reshape(rows, L);

    /// <summary>The rows a batch holds, read off its first column.</summary>
    private static long[] RowsOf(Tensor batch) => batch.select(1, 0).data<long>().Select(v => v / L).ToArray();

    [Theory]
    [InlineData(5, 2, new long[] { 0, 1, 2, 3, 4, 0, 1, 2 })]
    [InlineData(4, 4, new long[] { 0, 1, 2, 3, 0, 1, 2, 3 })]
    [InlineData(3, 1, new long[] { 0, 1, 2, 0 })]
    [InlineData(1, 1, new long[] { 0, 0, 0 })]
    public void Next_ServesRowsInOrder_WrappingAround_AndTheCursorCountsRows(int rows, int batchSize, long[] expected)
    {
        using var data = Data(rows);
        using var source = new TensorRowBatches(data, batchSize: batchSize);
        Assert.Equal("row=0", source.Cursor);
        var served = new List<long>();
        for (int b = 0; b < expected.Length / batchSize; b++)
        {
            var (ids, labels) = source.Next();
            Assert.Equal(new long[] { batchSize, L }, ids.shape);
            Assert.Equal(ScalarType.Int64, ids.dtype);
            TensorAssert.Equal(labels, ids, "labels default to the ids");
            served.AddRange(RowsOf(ids));
            Assert.Equal($"row={(b + 1) * batchSize}", source.Cursor);
            ids.Dispose(); labels.Dispose();
        }
        Assert.Equal(expected, served);
    }

    [Fact]
    public void GivenLabels_AreServedAlignedWithTheirRows_AndTheInputsAreCopied()
    {
        using var data = Data(3);
        using Tensor labels = data.neg();
        labels[1, 0] = torch.tensor(-100L);
        using var source = new TensorRowBatches(data, labels, batchSize: 2);
        data.zero_();                                                          // the source holds its own copy
        labels.zero_();
        var (ids, lab) = source.Next();
        Assert.Equal(new long[] { 0, 1 }, RowsOf(ids));
        Assert.Equal(new long[] { 0, -1, -2, -3, -100, -5, -6, -7 }, lab.data<long>().ToArray());
        ids.Dispose(); lab.Dispose();
    }

    [Fact]
    public void IntegerIdsOfAnotherWidth_AreServedAsInt64()
    {
        using var data = Data(2).to(ScalarType.Int32);
        using var source = new TensorRowBatches(data);
        var (ids, labels) = source.Next();
        Assert.Equal(ScalarType.Int64, ids.dtype);
        Assert.Equal(ScalarType.Int64, labels.dtype);
        Assert.Equal(new long[] { 0, 1, 2, 3 }, ids.data<long>().ToArray());
        ids.Dispose(); labels.Dispose();
    }

    /// <summary>Floating-point ids (e.g. a tensor made from doubles) would be truncated into other tokens: refused, named.</summary>
    [Theory]
    [InlineData(ScalarType.Float32, false)]
    [InlineData(ScalarType.Float64, true)]
    [InlineData(ScalarType.Bool, true)]
    public void NonIntegerIdsOrLabels_AreRefusedNamingTheTensorAndItsDtype(ScalarType dtype, bool inLabels)
    {
        using var data = Data(2);
        using var other = data.to(dtype);
        var e = Assert.Throws<ArgumentException>(() => inLabels ? new TensorRowBatches(data, other) : new TensorRowBatches(other));
        string name = inLabels ? "labels" : "inputIds";
        Assert.Equal(name, e.ParamName);
        Assert.StartsWith($"{name} must hold integer token ids (int64 or another integer type); got {dtype}.", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(12)]                                                           // past the end: modulo the rows
    public void Seek_ToACursorItGave_ContinuesAsTheSourceThatGaveIt(int batchesBefore)
    {
        using var data = Data(5);
        using var live = new TensorRowBatches(data, batchSize: 2);
        for (int i = 0; i < batchesBefore; i++) { var (a, b) = live.Next(); a.Dispose(); b.Dispose(); }
        string cursor = live.Cursor;

        using var resumed = new TensorRowBatches(data, batchSize: 2);
        resumed.Seek(cursor);
        Assert.Equal(cursor, resumed.Cursor);
        for (int i = 0; i < 4; i++)
        {
            var (liveIds, liveLabels) = live.Next();
            var (ids, labels) = resumed.Next();
            TensorAssert.Equal(ids, liveIds, $"ids of batch {i} after seeking to {cursor}");
            TensorAssert.Equal(labels, liveLabels, $"labels of batch {i} after seeking to {cursor}");
            liveIds.Dispose(); liveLabels.Dispose(); ids.Dispose(); labels.Dispose();
        }
        Assert.Equal(live.Cursor, resumed.Cursor);
    }

    [Theory]
    [InlineData("")]
    [InlineData("row=")]
    [InlineData("row=-1")]
    [InlineData("row=+1")]
    [InlineData("row= 1")]
    [InlineData("row=1 ")]
    [InlineData("row=1.5")]
    [InlineData("row=0x10")]
    [InlineData("row=1,000")]
    [InlineData("row=99999999999999999999")]                                   // beyond long
    [InlineData("Row=1")]
    [InlineData("rows=1")]
    [InlineData("1")]
    [InlineData("chunk=3")]
    public void Seek_ToAMalformedCursor_IsAnArgumentExceptionNamingTheValueAndTheFormat_AndKeepsThePosition(string cursor)
    {
        using var data = Data(5);
        using var source = new TensorRowBatches(data, batchSize: 2);
        var (a, b) = source.Next(); a.Dispose(); b.Dispose();

        var e = Assert.Throws<ArgumentException>(() => source.Seek(cursor));
        Assert.Equal("cursor", e.ParamName);
        Assert.Contains($"'{cursor}'", e.Message);
        Assert.Contains("row=N", e.Message);
        Assert.Contains("non-negative decimal integer", e.Message);
        Assert.Equal("row=2", source.Cursor);
        var (ids, labels) = source.Next();
        Assert.Equal(new long[] { 2, 3 }, RowsOf(ids));
        ids.Dispose(); labels.Dispose();
    }

    [Theory]
    [InlineData(1, "row=9223372036854775807")]                                // long.MaxValue: one more row overflows
    [InlineData(3, "row=9223372036854775805")]                                // long.MaxValue - 2: a batch of 3 overflows
    public void Seek_ToACursorWhoseNextBatchWouldOverflow_IsAnArgumentExceptionNamingIt_AndKeepsThePosition(int batchSize, string cursor)
    {
        using var data = Data(5);
        using var source = new TensorRowBatches(data, batchSize: batchSize);

        var e = Assert.Throws<ArgumentException>(() => source.Seek(cursor));

        Assert.Equal("cursor", e.ParamName);
        Assert.Contains($"'{cursor}'", e.Message);
        Assert.Contains($"batch size ({batchSize})", e.Message);
        Assert.Contains("long.MaxValue", e.Message);
        Assert.Equal("row=0", source.Cursor);
    }

    [Fact]
    public void NearLongMaxValue_TheLastBatchThatFitsIsServed_ThenNextRefusesWithoutMoving()
    {
        using var data = Data(5);
        using var source = new TensorRowBatches(data, batchSize: 2);
        source.Seek($"row={long.MaxValue - 2}");                              // the largest cursor a batch of 2 fits

        var (ids, labels) = source.Next();
        Assert.Equal(new[] { (long.MaxValue - 2) % 5, (long.MaxValue - 1) % 5 }, RowsOf(ids));
        ids.Dispose(); labels.Dispose();
        Assert.Equal($"row={long.MaxValue}", source.Cursor);

        var e = Assert.Throws<InvalidOperationException>(() => source.Next());
        Assert.Contains($"{long.MaxValue}", e.Message);
        Assert.Equal($"row={long.MaxValue}", source.Cursor);                  // not wrapped to a negative row
    }

    [Fact]
    public void Seek_ToNull_IsAnArgumentNullException()
    {
        using var data = Data(2);
        using var source = new TensorRowBatches(data);
        Assert.Equal("cursor", Assert.Throws<ArgumentNullException>(() => source.Seek(null!)).ParamName);
    }

    public static TheoryData<long[], long[]?, string> BadShapes => new()
    {
        { [4], null, "inputIds" },                                            // 1-D
        { [2, 3, 4], null, "inputIds" },                                      // 3-D
        { [0, 4], null, "inputIds" },                                         // no rows
        { [2, 1], null, "inputIds" },                                         // L < 2
        { [2, 4], [2, 5], "labels" },
        { [2, 4], [4, 2], "labels" },
    };

    [Theory]
    [MemberData(nameof(BadShapes))]
    public void Construction_WithShapesThatDoNotFit_IsAnArgumentExceptionNamingTheParameter(long[] idShape, long[]? labelShape, string parameter)
    {
        using Tensor ids = torch.zeros(idShape, ScalarType.Int64);
        using Tensor? labels = labelShape is null ? null : torch.zeros(labelShape, ScalarType.Int64);
        var e = Assert.Throws<ArgumentException>(() => new TensorRowBatches(ids, labels));
        Assert.Equal(parameter, e.ParamName);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(4)]                                                            // more than the 3 rows
    public void Construction_WithABatchSizeOutside1ToRows_IsOutOfRange(int batchSize)
    {
        using var data = Data(3);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TensorRowBatches(data, batchSize: batchSize));
        Assert.Equal("batchSize", e.ParamName);
        Assert.Contains("[1, 3]", e.Message);
    }
}
