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

    /// <summary>
    /// MergeDelta is quantizing dequantize(W) + delta once more with the layer's settings: its state equals
    /// <see cref="Blockwise4Bit.Quantize"/> of that target (pinned to bitsandbytes by the quant fixtures) bit for bit.
    /// Decoded independently in float64 (<see cref="Nf4Reference"/>), each element lies within half NF4's widest gap
    /// (between -1 and -0.6962: 0.1519) of its block's absmax from the target, plus the 8-bit scale's error
    /// |map[code] * nested scale + offset - absmax|, since the code is the nearest to x / absmax; the reported error is
    /// the largest.
    /// </summary>
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
        var target = before + delta;

        using var expected = Blockwise4Bit.Quantize(target, QuantType.Nf4, 64, doubleQuant: true);
        TensorAssert.Equal(q.State.Packed, expected.Packed, "codes: the target quantized once");
        TensorAssert.Equal(q.State.Absmax, expected.Absmax, "8-bit absmax codes");
        TensorAssert.Equal(q.State.Nested!.Absmax, expected.Nested!.Absmax, "nested scales");
        Assert.Equal(expected.Nested.Offset, q.State.Nested.Offset);

        double[] t = target.to(float64).data<double>().ToArray(), decoded = Nf4Reference.Weight(q).data<double>().ToArray();
        byte[] codes = q.State.Absmax.data<byte>().ToArray();
        float[] nestedScale = q.State.Nested.Absmax.data<float>().ToArray();
        double[] sorted = Nf4Reference.Table.Order().ToArray();
        double halfGap = Enumerable.Range(0, 15).Max(i => sorted[i + 1] - sorted[i]) / 2;
        double worst = 0;
        for (int blockIndex = 0; blockIndex < t.Length / 64; blockIndex++)
        {
            double absmax = Enumerable.Range(blockIndex * 64, 64).Max(i => Math.Abs(t[i]));
            double scale = q.State.Nested.Map[codes[blockIndex]] * (double)nestedScale[blockIndex / 256] + q.State.Nested.Offset;
            for (int i = blockIndex * 64; i < (blockIndex + 1) * 64; i++)
            {
                double err = Math.Abs(decoded[i] - t[i]);
                worst = Math.Max(worst, err);
                Assert.True(err <= halfGap * absmax + Math.Abs(scale - absmax) + 1e-9, $"element {i}: merge error {err:E3}, block absmax {absmax:E3}");
            }
        }
        Assert.True(Math.Abs(worst - reported) <= 1e-7, $"reported merge error {reported:R}, float64 {worst:R}");
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
