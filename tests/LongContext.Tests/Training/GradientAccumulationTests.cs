using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>
/// Accumulating k micro-batches (different row counts and different numbers of labelled targets) gives the loss and
/// the gradients of one batch of all their rows under the plain mean cross-entropy (shift, ignore -100, mean over
/// labelled targets, written here with <c>cross_entropy</c>). Tolerances: 1e-12 in float64, 1e-6 in float32.
/// </summary>
[Trait(Category.Name, Category.Training)]
[Collection(GlobalRngCollection.Name)]
public sealed class GradientAccumulationTests
{
    private const long Vocab = 13, Hidden = 6, N = 9;

    private sealed record MicroBatch(Tensor Ids, Tensor Labels);

    /// <summary>Plain shifted cross-entropy of logits (B, N, V) against labels (B, N), in the logits' dtype.</summary>
    private static Tensor PlainLoss(Tensor logits, Tensor labels, nn.Reduction reduction)
    {
        long n = logits.shape[1];
        return nn.functional.cross_entropy(logits.narrow(1, 0, n - 1).reshape(-1, Vocab), labels.narrow(1, 1, n - 1).reshape(-1),
            ignore_index: -100, reduction: reduction);
    }

    private static List<MicroBatch> MicroBatches()
    {
        var rows = new[] { 2, 1, 3 };
        var result = new List<MicroBatch>();
        for (int i = 0; i < rows.Length; i++)
        {
            Tensor ids = torch.randint(0, Vocab, [rows[i], N]);
            Tensor labels = ids.clone();
            if (i == 0) labels[0, TensorIndex.Slice(5)] = torch.tensor(-100L);      // a padded tail
            if (i == 1) labels[0, TensorIndex.Slice(2)] = torch.tensor(-100L);      // mostly padding: 1 target
            result.Add(new MicroBatch(ids, labels));
        }
        return result;
    }

    public static TheoryData<string, ScalarType, double, bool> Cases() => new()
    {
        { "float64, plain summed cross-entropy", ScalarType.Float64, 1e-12, false },
        { "float32, plain summed cross-entropy", ScalarType.Float32, 1e-6, false },
        { "float64, chunked summed loss", ScalarType.Float64, 1e-12, true },
        { "float32, chunked summed loss", ScalarType.Float32, 1e-6, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void KMicroBatches_EqualOneBatchOfAllRows(string name, ScalarType dtype, double tolerance, bool chunked)
    {
        torch.random.manual_seed(21);
        using var model = new TinyLm(Vocab, Hidden, dtype: dtype);
        var batches = MicroBatches();
        var parameters = TrainableParameters.Select(model);

        // One batch of every row.
        Tensor allIds = torch.cat(batches.Select(b => b.Ids).ToArray(), 0);
        Tensor allLabels = torch.cat(batches.Select(b => b.Labels).ToArray(), 0);
        Tensor reference = PlainLoss(model.forward(allIds), allLabels, nn.Reduction.Mean);
        reference.backward();
        var expected = parameters.ToDictionary(p => p.Name, p => p.Parameter.grad!.clone());
        foreach (var p in parameters) p.Parameter.grad = null;

        AccumulatedLoss result = GradientAccumulation.Run(batches, b => b.Labels, b => chunked
            ? ChunkedCausalLmLoss.ComputeSum(model.Hidden(b.Ids), model.HeadWeight, b.Labels, chunkSize: 3)
            : PlainLoss(model.forward(b.Ids), b.Labels, nn.Reduction.Sum));

        Assert.Equal(3, result.MicroBatches);
        Assert.Equal(allLabels.narrow(1, 1, N - 1).ne(-100).sum().item<long>(), result.Targets);
        double refValue = reference.to(ScalarType.Float64).item<double>();
        Assert.True(Math.Abs(result.Loss - refValue) <= tolerance * Math.Max(1, Math.Abs(refValue)), $"{name}: loss {result.Loss:R} vs one batch {refValue:R}");
        foreach (var p in parameters)
        {
            using Tensor g = p.Parameter.grad!;
            Assert.True(expected[p.Name].abs().max().to(ScalarType.Float64).item<double>() > 0, $"{name}: reference gradient of {p.Name} is zero");
            TensorAssert.Close(g, expected[p.Name], tolerance, $"{name}: gradient of {p.Name}");
        }
    }

    [Fact]
    public void MeanOfMicroBatchMeans_WouldDiffer_SoTheCountNormalisationMatters()
    {
        torch.random.manual_seed(21);
        using var model = new TinyLm(Vocab, Hidden, dtype: ScalarType.Float64);
        var batches = MicroBatches();
        Tensor allIds = torch.cat(batches.Select(b => b.Ids).ToArray(), 0);
        Tensor allLabels = torch.cat(batches.Select(b => b.Labels).ToArray(), 0);
        using var noGrad = torch.no_grad();
        double oneBatch = PlainLoss(model.forward(allIds), allLabels, nn.Reduction.Mean).item<double>();
        double meanOfMeans = batches.Average(b => PlainLoss(model.forward(b.Ids), b.Labels, nn.Reduction.Mean).item<double>());
        Assert.True(Math.Abs(oneBatch - meanOfMeans) > 1e-3, $"one batch {oneBatch} vs mean of means {meanOfMeans}: the micro-batches should differ in targets");
    }

    [Fact]
    public void CountTargets_CountsShiftedLabelsThatAreNotIgnored()
    {
        // Row 0: labels 5 -100 7 8 -> positions 1..3 hold -100, 7, 8: two targets. Row 1: 1 2 -100 -100: one target.
        using Tensor labels = torch.tensor(new long[] { 5, -100, 7, 8, 1, 2, -100, -100 }).reshape(2, 4);
        Assert.Equal(3, GradientAccumulation.CountTargets(labels));
    }

    [Fact]
    public void NoMicroBatches_IsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => GradientAccumulation.Run(Array.Empty<Tensor>(), t => t, t => t));
        Assert.Equal("microBatches", e.ParamName);
    }

    [Fact]
    public void NoLabelledTarget_IsAnError()
    {
        using Tensor labels = torch.full([2, 4], -100L);
        var e = Assert.Throws<ArgumentException>(() => GradientAccumulation.Run([labels], t => t, t => t.sum()));
        Assert.Contains("no labelled target", e.Message);
    }

    [Fact]
    public void NonScalarLoss_IsAnError()
    {
        using Tensor labels = torch.ones([1, 4], ScalarType.Int64);
        var e = Assert.Throws<InvalidOperationException>(() => GradientAccumulation.Run([labels], t => t, t => t.to(ScalarType.Float32)));
        Assert.Contains("shape [1, 4]", e.Message);
    }

    [Fact]
    public void LabelsWithOneColumn_AreRejected()
    {
        using Tensor labels = torch.ones([3, 1], ScalarType.Int64);
        var e = Assert.Throws<ArgumentException>(() => GradientAccumulation.CountTargets(labels));
        Assert.Equal("labels", e.ParamName);
    }
}
