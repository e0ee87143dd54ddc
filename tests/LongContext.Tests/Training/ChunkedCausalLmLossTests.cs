using LongContext.Llama;
using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>
/// The chunked loss against (a) the model's plain loss <see cref="CausalLmLoss.Compute"/> on full logits in float32:
/// value within 1e-6 relative, gradients (of the loss times the target count, so they are of order 1) within 1e-6
/// of max(1, |reference|); and (b) an explicit float64 log-softmax computed with autograd: 1e-12.
/// </summary>
[Trait(Category.Name, Category.Training)]
[Collection(GlobalRngCollection.Name)]
public sealed class ChunkedCausalLmLossTests
{
    private static void AssertScaledClose(Tensor actual, Tensor expected, double tolerance, string what)
    {
        double scale = Math.Max(1.0, expected.abs().max().to(ScalarType.Float64).item<double>());
        double err = TensorAssert.MaxAbsDiff(actual, expected);
        Assert.True(err <= tolerance * scale, $"{what}: max abs error {err:E3} exceeds {tolerance:E1} x {scale:G4}");
    }

    private static (Tensor Hidden, Tensor Weight, Tensor Labels) Inputs(long b, long n, long h, long v, ScalarType dtype, int seed)
    {
        torch.random.manual_seed(seed);
        Tensor hidden = torch.randn([b, n, h], dtype: dtype);
        Tensor weight = torch.randn([v, h], dtype: dtype).div_(Math.Sqrt(h));
        Tensor labels = torch.randint(0, v, [b, n]);
        labels[0, TensorIndex.Slice(n - n / 4)] = torch.tensor(-100L);        // padded tail of row 0
        if (n > 3) labels[b - 1, 3] = torch.tensor(-100L);                    // a hole in the last row
        return (hidden, weight, labels);
    }

    [Theory]
    [InlineData("chunk 1", 1)]
    [InlineData("chunk 7 (ragged last chunk)", 7)]
    [InlineData("chunk N-1 (one chunk per row)", 299)]
    [InlineData("chunk larger than the row", 4096)]
    public void Float32_ValueAndGradients_EqualThePlainLoss(string name, int chunkSize)
    {
        var (hidden, weight, labels) = Inputs(2, 300, 32, 500, ScalarType.Float32, 5);
        long targets = GradientAccumulation.CountTargets(labels);

        Tensor h1 = hidden.detach().requires_grad_(true), w1 = weight.detach().requires_grad_(true);
        Tensor plain = CausalLmLoss.Compute(h1.matmul(w1.t()), labels);
        plain.backward([torch.tensor((float)targets)]);

        Tensor h2 = hidden.detach().requires_grad_(true), w2 = weight.detach().requires_grad_(true);
        Tensor chunked = ChunkedCausalLmLoss.Compute(h2, w2, labels, chunkSize);
        chunked.backward([torch.tensor((float)targets)]);

        Assert.Equal(ScalarType.Float32, chunked.dtype);
        double p = plain.item<float>(), c = chunked.item<float>();
        Assert.True(Math.Abs(p - c) <= 1e-6 * Math.Abs(p), $"{name}: loss {c:R} vs plain {p:R}");
        AssertScaledClose(h2.grad!, h1.grad!, 1e-6, $"{name}: gradient of the hidden states");
        AssertScaledClose(w2.grad!, w1.grad!, 1e-6, $"{name}: gradient of the head weight");
        using Tensor lastPosition = h2.grad!.select(1, 299);
        Assert.Equal(0.0, lastPosition.abs().max().item<float>());          // position N-1 predicts nothing
    }

    [Fact]
    public void Float64_ValueAndGradients_EqualAnExplicitLogSoftmax()
    {
        var (hidden, weight, labels) = Inputs(3, 17, 6, 11, ScalarType.Float64, 9);
        Tensor h1 = hidden.detach().requires_grad_(true), w1 = weight.detach().requires_grad_(true);
        Tensor logits = h1.matmul(w1.t()).narrow(1, 0, 16);                  // position t predicts label t + 1
        Tensor targets = labels.narrow(1, 1, 16);
        Tensor mask = targets.ne(-100).to(ScalarType.Float64);
        Tensor logProbs = logits - logits.logsumexp(-1, keepdim: true);
        Tensor picked = logProbs.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1);
        Tensor reference = -(picked * mask).sum() / mask.sum();
        reference.backward();

        Tensor h2 = hidden.detach().requires_grad_(true), w2 = weight.detach().requires_grad_(true);
        Tensor loss = ChunkedCausalLmLoss.Compute(h2, w2, labels, chunkSize: 5);
        loss.backward();

        Assert.Equal(ScalarType.Float64, loss.dtype);
        TensorAssert.Close(loss, reference, 1e-12, "loss");
        TensorAssert.Close(h2.grad!, h1.grad!, 1e-12, "gradient of the hidden states");
        TensorAssert.Close(w2.grad!, w1.grad!, 1e-12, "gradient of the head weight");
    }

    [Fact]
    public void Sum_IsTheMeanTimesTheTargetCount()
    {
        var (hidden, weight, labels) = Inputs(2, 40, 8, 30, ScalarType.Float64, 2);
        long targets = GradientAccumulation.CountTargets(labels);
        using var noGrad = torch.no_grad();
        double mean = ChunkedCausalLmLoss.Compute(hidden, weight, labels, 6).item<double>();
        double sum = ChunkedCausalLmLoss.ComputeSum(hidden, weight, labels, 6).item<double>();
        Assert.True(Math.Abs(sum - mean * targets) <= 1e-12 * sum, $"sum {sum:R} vs mean x {targets} = {mean * targets:R}");
    }

    [Fact]
    public void TiedHead_GradientsOfEveryParameterEqualThePlainLoss()
    {
        torch.random.manual_seed(3);
        using var plainModel = new TinyLm(vocab: 40, hidden: 12);
        using var chunkedModel = new TinyLm(vocab: 40, hidden: 12);
        chunkedModel.load_state_dict(plainModel.state_dict());
        Tensor ids = torch.randint(0, 40, [2, 25]);
        Tensor labels = ids.clone();
        labels[1, TensorIndex.Slice(20)] = torch.tensor(-100L);

        CausalLmLoss.Compute(plainModel.forward(ids), labels).mul(100).backward();
        ChunkedCausalLmLoss.Compute(chunkedModel.Hidden(ids), chunkedModel.HeadWeight, labels, chunkSize: 4).mul(100).backward();

        var expected = TrainableParameters.Select(plainModel).ToDictionary(p => p.Name, p => p.Parameter.grad!);
        foreach (var p in TrainableParameters.Select(chunkedModel))
            AssertScaledClose(p.Parameter.grad!, expected[p.Name], 1e-6, $"gradient of {p.Name}");
    }

    [Fact]
    public void FrozenHead_GetsNoGradient_HiddenStatesStillDo()
    {
        var (hidden, weight, labels) = Inputs(1, 20, 4, 9, ScalarType.Float32, 4);
        Tensor h = hidden.detach().requires_grad_(true);
        ChunkedCausalLmLoss.Compute(h, weight, labels, 3).backward();
        Assert.NotNull(h.grad);
        Assert.Null(weight.grad);
    }

    [Fact]
    public void WithoutGradients_ReturnsTheSameValueAndNoGraph()
    {
        var (hidden, weight, labels) = Inputs(2, 20, 4, 9, ScalarType.Float32, 4);
        Tensor h = hidden.detach().requires_grad_(true);
        float withGraph = ChunkedCausalLmLoss.Compute(h, weight, labels, 3).item<float>();
        using var noGrad = torch.no_grad();
        Tensor loss = ChunkedCausalLmLoss.Compute(h, weight, labels, 3);
        Assert.False(loss.requires_grad);
        Assert.Equal(withGraph, loss.item<float>());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-4)]
    public void ChunkSizeBelowOne_IsRejected(int chunkSize)
    {
        var (hidden, weight, labels) = Inputs(1, 8, 4, 9, ScalarType.Float32, 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ChunkedCausalLmLoss.Compute(hidden, weight, labels, chunkSize));
        Assert.Equal("chunkSize", e.ParamName);
        Assert.Contains($"got {chunkSize}", e.Message);
    }

    [Fact]
    public void LabelsShapeMismatch_IsRejectedNamingBothShapes()
    {
        var (hidden, weight, _) = Inputs(2, 8, 4, 9, ScalarType.Float32, 1);
        using Tensor labels = torch.zeros([2, 7], ScalarType.Int64);
        var e = Assert.Throws<ArgumentException>(() => ChunkedCausalLmLoss.Compute(hidden, weight, labels));
        Assert.Equal("labels", e.ParamName);
        Assert.Contains("[2, 7]", e.Message);
        Assert.Contains("[2, 8, 4]", e.Message);
    }

    [Fact]
    public void LabelOutsideTheVocabulary_IsRejectedWithItsPosition()
    {
        var (hidden, weight, labels) = Inputs(2, 8, 4, 9, ScalarType.Float32, 1);
        labels[1, 4] = torch.tensor(9L);
        var e = Assert.Throws<ArgumentException>(() => ChunkedCausalLmLoss.Compute(hidden, weight, labels));
        Assert.Equal("labels", e.ParamName);
        Assert.Contains("labels[1, 4] = 9", e.Message);
        Assert.Contains("[0, 9)", e.Message);
    }

    [Fact]
    public void HeadWeightOfAnotherWidth_IsRejected()
    {
        var (hidden, _, labels) = Inputs(2, 8, 4, 9, ScalarType.Float32, 1);
        using Tensor weight = torch.zeros(9, 5);
        var e = Assert.Throws<ArgumentException>(() => ChunkedCausalLmLoss.Compute(hidden, weight, labels));
        Assert.Equal("headWeight", e.ParamName);
    }

    [Fact]
    public void SingleTokenRows_AreRejected()
    {
        var (hidden, weight, labels) = Inputs(2, 1, 4, 9, ScalarType.Float32, 1);
        var e = Assert.Throws<ArgumentException>(() => ChunkedCausalLmLoss.Compute(hidden, weight, labels));
        Assert.Contains("N = 1", e.Message);
    }
}
