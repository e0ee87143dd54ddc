using LongContext.Quantization;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Quantization;

[Trait(Category.Name, Category.Quantization)]
public sealed class Linear4BitTests
{
    public static TheoryData<string> Devices()
    {
        var d = new TheoryData<string> { "cpu" };
        if (cuda.is_available()) d.Add("cuda");
        return d;
    }

    /// <summary>
    /// Forward and input gradient against float64 over the weight decoded by <see cref="Nf4Reference"/> from the layer's
    /// bitsandbytes state dict (codes, 8-bit absmax codes, nested scales and offset), not through the library's
    /// dequantizer the layer itself calls. Tolerance 1e-5: float32 products and sums of 96 terms on outputs below 5.
    /// </summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void ForwardAndInputGradient_EqualFloatLinearOverDequantizedWeight(string deviceName)
    {
        using var scope = NewDisposeScope();
        var device = torch.device(deviceName);
        var gen = new Generator(21);
        using var dense = nn.Linear(96, 40, hasBias: true, device: device);
        using (no_grad()) { dense.weight!.copy_(randn(40, 96, generator: gen).to(device) * 0.05); dense.bias!.copy_(randn(40, generator: gen).to(device)); }
        using var q = Linear4Bit.FromLinear(dense, QuantType.Nf4, 64, doubleQuant: true);
        Assert.Equal(96, q.InFeatures);
        Assert.Equal(40, q.OutFeatures);

        var w = Nf4Reference.Weight(q);                // float64 (40, 96), decoded from the state dict
        var b = dense.bias!.detach().cpu().to(float64);
        var x = randn(new long[] { 3, 5, 96 }, generator: gen).to(device).requires_grad_(true);
        var g = randn(new long[] { 3, 5, 40 }, generator: gen);

        var y = q.forward(x);
        TensorAssert.Close(y, x.detach().cpu().to(float64).matmul(w.t()) + b, 1e-5, "forward vs float64 over the decoded codes");
        (y * g.to(device)).sum().backward();
        TensorAssert.Close(x.grad!, g.to(float64).matmul(w), 1e-5, "input gradient vs float64 g W");

        Assert.All(q.parameters(), p => Assert.False(p.requires_grad));
        Assert.Null(q.Bias!.grad);
        Assert.Equal(ScalarType.Byte, q.State.Packed.dtype);
    }

    [Fact]
    public void Forward_InComputeDtypeBFloat16_EqualsBFloat16LinearOverDequantizedWeight()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(4);
        using var dense = nn.Linear(128, 32, hasBias: false);
        using (no_grad()) dense.weight!.copy_(randn(32, 128, generator: gen) * 0.05);
        using var q = Linear4Bit.FromLinear(dense, computeDtype: ScalarType.BFloat16);
        var x = randn(new long[] { 7, 128 }, generator: gen);
        var y = q.forward(x);
        Assert.Equal(ScalarType.Float32, y.dtype); // cast back to the input dtype
        var w = q.DequantizeWeight();
        Assert.Equal(ScalarType.BFloat16, w.dtype);
        var expected = nn.functional.linear(x.to(bfloat16), w).to(float32);
        TensorAssert.Equal(y, expected, "bf16 forward");
    }

    [Fact]
    public void BytesPerParameter_Block64DoubleQuant_IsAtMost053()
    {
        using var dense = nn.Linear(1024, 256, hasBias: false);
        using var q = Linear4Bit.FromLinear(dense);
        long n = 1024 * 256, blocks = n / 64;
        double expected = (n / 2 + blocks + 4 * ((blocks + 255) / 256) + 4) / (double)n;
        Assert.Equal(expected, q.BytesPerParameter, 12);
        Assert.True(q.BytesPerParameter <= 0.53);
        Assert.Equal(q.State.StoredBytes, q.StoredBytes);
    }

    [Fact]
    public void MergeDelta_RequantizesDequantizedPlusDelta_WithinHalfACodeGap()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(8);
        using var dense = nn.Linear(256, 64, hasBias: false);
        using (no_grad()) dense.weight!.copy_(randn(64, 256, generator: gen) * 0.02);
        using var q = Linear4Bit.FromLinear(dense);
        var before = q.DequantizeWeight();
        // A LoRA-shaped delta: scaling * B A with r = 8.
        var delta = 2.0 * randn(64, 8, generator: gen).matmul(randn(8, 256, generator: gen)) * 1e-3;
        double reported = q.MergeDelta(delta);
        var after = q.DequantizeWeight();
        var target = before + delta;
        double err = (after - target).abs().max().item<float>();
        Assert.Equal(err, reported, 6);
        // Bound: half NF4's widest gap (0.2770/2) times the largest block scale of the target (+ double-quant slack).
        double bound = 0.1386 * target.abs().max().item<float>() * 1.02;
        Assert.True(err <= bound, $"merge error {err} > {bound}");
        double rel = ((after - target).norm() / target.norm()).item<float>();
        Assert.True(rel <= 0.100, $"relative RMS merge error {rel}"); // measured 0.092 (same as quantizing once)
        Assert.Equal(ScalarType.Float32, q.State.OriginalDtype);
    }

    [Fact]
    public void ToDtype_ChangesComputeDtypeButNeverTheCodes()
    {
        using var dense = nn.Linear(64, 16);
        using var q = Linear4Bit.FromLinear(dense);
        q.to(ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, q.ComputeDtype);
        Assert.Equal(ScalarType.Byte, q.State.Packed.dtype);
        Assert.Equal(ScalarType.Byte, q.State.Absmax.dtype);
        Assert.Equal(ScalarType.BFloat16, q.Bias!.dtype);
        using var y = q.forward(ones(2, 64, dtype: ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, y.dtype);
    }

    /// <summary>(row name, input shape, dtype, text the message must hold) for a layer with in_features 64.</summary>
    public static TheoryData<string, long[], ScalarType, string> BadForwardInputs() => new()
    {
        { "last dimension one short", new long[] { 2, 63 }, ScalarType.Float32, "got 63" },
        { "last dimension too wide", new long[] { 3, 5, 128 }, ScalarType.Float32, "got 128" },
        { "transposed input", new long[] { 64, 2 }, ScalarType.Float32, "got 2" },
        { "scalar", Array.Empty<long>(), ScalarType.Float32, "scalar" },
        { "integer ids", new long[] { 2, 64 }, ScalarType.Int64, "Int64" },
    };

    [Theory]
    [MemberData(nameof(BadForwardInputs))]
    public void Forward_BadInput_NamesTheInputWithTheValueAndTheExpectedWidth(string row, long[] shape, ScalarType dtype, string detail)
    {
        _ = row; // names the row
        using var dense = nn.Linear(64, 16);
        using var q = Linear4Bit.FromLinear(dense);
        using var input = ones(shape, dtype: dtype);
        var e = Assert.Throws<ArgumentException>(() => q.forward(input));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("64", e.Message);
        Assert.Contains(detail, e.Message);
    }

    [Fact]
    public void ReplaceWeight_WrongShape_NamesTheParameterAndShape()
    {
        using var dense = nn.Linear(64, 16);
        using var q = Linear4Bit.FromLinear(dense);
        var e = Assert.Throws<ArgumentException>(() => q.ReplaceWeight(ones(16, 65)));
        Assert.Equal("dense", e.ParamName);
        Assert.Contains("65", e.Message);
    }

    [Fact]
    public void FromLinear_BadBlockSize_NamesTheParameter()
    {
        using var dense = nn.Linear(64, 16);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Linear4Bit.FromLinear(dense, blockSize: 100));
        Assert.Equal("blockSize", e.ParamName);
    }
}
