using LongContext.Quantization;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Quantization;

[Trait(Category.Name, Category.Quantization)]
public sealed class CodebookAndDoubleQuantTests
{
    [Fact]
    public void DynamicMap8Bit_EqualsPyTorchComputedMapToOneUlp()
    {
        // PyTorch 1.13 and the libtorch under TorchSharp round linspace differently in the last bit of a few entries.
        float[] map = Codebooks.DynamicMap8Bit;
        Assert.Equal(256, map.Length);
        TensorAssert.Close(tensor(map), tensor(DynamicMapReference.Values), 1.2e-7, "dynamic map vs PyTorch 1.13");
        Assert.Equal(0f, map[127]);
        Assert.Equal(1f, map[255]);
        Assert.True(map.Zip(map.Skip(1)).All(p => p.First < p.Second), "map must be strictly ascending");
    }

    [Theory]
    [InlineData(64, 8192)]
    [InlineData(128, 100_003)]
    [InlineData(32, 700)]
    public void DoubleQuant_DequantizedAbsmax_IsTheNearestMapValueTimesNestedScalePlusOffset(int blockSize, int n)
    {
        using var scope = NewDisposeScope();
        var w = randn(n, generator: new Generator(11)) * 0.02;
        using var plain = Blockwise4Bit.Quantize(w, QuantType.Nf4, blockSize);
        using var nested = Blockwise4Bit.Quantize(w, QuantType.Nf4, blockSize, doubleQuant: true);
        TensorAssert.Equal(nested.Packed, plain.Packed, "packed codes do not depend on double quantization");
        Assert.NotNull(nested.Nested);
        Assert.Equal(256, nested.Nested!.BlockSize);

        float[] absmax = plain.Absmax.data<float>().ToArray();
        float[] deq = nested.DequantizedAbsmax().data<float>().ToArray();
        float[] nestedScale = nested.Nested.Absmax.data<float>().ToArray();
        double offset = absmax.Select(a => (double)a).Average();
        Assert.Equal(offset, nested.Nested.Offset, 6);
        float[] map = Codebooks.DynamicMap8Bit;
        double maxHalfGap = Enumerable.Range(0, 255).Max(i => (map[i + 1] - map[i]) / 2.0);
        for (int i = 0; i < absmax.Length; i++)
        {
            // Reference in float64: nearest map entry to (a - offset) / scale.
            double scale = nestedScale[i / 256];
            double c = (absmax[i] - nested.Nested.Offset) / scale;
            double nearest = map.MinBy(m => Math.Abs(m - c));
            double expected = nearest * scale + nested.Nested.Offset;
            Assert.True(Math.Abs(deq[i] - expected) <= 1e-6 * Math.Max(1, Math.Abs(expected)),
                $"block {i}: dequantized scale {deq[i]} vs reference {expected}");
            Assert.True(Math.Abs(deq[i] - absmax[i]) <= maxHalfGap * scale + 1e-7,
                $"block {i}: |{deq[i]} - {absmax[i]}| exceeds the map's resolution {maxHalfGap * scale}");
        }
    }

    [Theory]
    [InlineData(QuantType.Nf4, 0.100)]
    [InlineData(QuantType.Fp4, 0.135)]
    public void RoundTrip_OnGaussianWeights_HasBoundedRelativeRmsError(QuantType type, double bound)
    {
        // Gaussian weights, std 0.02, block 64. Measured relative RMS error (||W - deq(W)|| / ||W||):
        // NF4 0.0920 (0.0921 with double quant), FP4 0.1220 (both); bounds leave ~10% headroom.
        using var scope = NewDisposeScope();
        var w = randn(new long[] { 512, 1024 }, generator: new Generator(3)) * 0.02;
        foreach (bool dq in new[] { false, true })
        {
            using var state = Blockwise4Bit.Quantize(w, type, 64, dq);
            var back = Blockwise4Bit.Dequantize(state, ScalarType.Float64);
            double rel = ((back - w.to(float64)).norm() / w.to(float64).norm()).item<double>();
            Assert.True(rel <= bound, $"{type} doubleQuant={dq}: relative RMS error {rel:F4} exceeds {bound}");
            // Elementwise: never more than half the widest code gap times the block scale (plus the scale's own error).
            double worst = (back - w.to(float64)).abs().max().item<double>();
            double absMax = w.abs().max().item<float>();
            Assert.True(worst <= (type == QuantType.Nf4 ? 0.1386 : 0.1667) * absMax * 1.01, $"{type}: max error {worst}");
        }
    }

    [Theory]
    [InlineData(64, true, 0.53)]
    [InlineData(64, false, 0.5626)]
    [InlineData(256, true, 0.505)]
    public void BytesPerParameter_MatchesTheClosedForm(int blockSize, bool dq, double ceiling)
    {
        using var scope = NewDisposeScope();
        long rows = 256, cols = 1024, n = rows * cols, blocks = n / blockSize;
        var w = randn(rows, cols, generator: new Generator(5));
        using var state = Blockwise4Bit.Quantize(w, QuantType.Nf4, blockSize, dq);
        double expected = dq
            ? (n / 2 + blocks + 4 * ((blocks + 255) / 256) + 4) / (double)n
            : (n / 2 + 4 * blocks) / (double)n;
        Assert.Equal(expected, state.BytesPerParameter, 12);
        Assert.True(state.BytesPerParameter <= ceiling, $"{state.BytesPerParameter} > {ceiling}");
        if (blockSize == 64 && dq)
        {
            double scaleBits = (state.BytesPerParameter - 0.5) * 8;
            Assert.InRange(scaleBits, 0.126, 0.128); // QLoRA: 8/64 + 32/(64*256) = 0.127 bits per parameter
        }
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void Quantize_HalfInputs_EqualsQuantizingTheirFloat32Values_AndComputeDtypeRoundsOnce(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var w = (randn(new long[] { 33, 70 }, generator: new Generator(9)) * 0.05).to(dtype);
        using var half = Blockwise4Bit.Quantize(w, QuantType.Nf4, 64);
        using var full = Blockwise4Bit.Quantize(w.to(float32), QuantType.Nf4, 64);
        TensorAssert.Equal(half.Packed, full.Packed, "packed");
        TensorAssert.Equal(half.Absmax, full.Absmax, "absmax");
        Assert.Equal(dtype, half.OriginalDtype);
        var deq = Blockwise4Bit.Dequantize(half);
        Assert.Equal(dtype, deq.dtype);
        TensorAssert.Equal(deq, Blockwise4Bit.Dequantize(full, ScalarType.Float32).to(dtype), "compute dtype = float32 product rounded once");
    }

    [Theory]
    [InlineData(16)]
    [InlineData(48)]
    [InlineData(8192)]
    [InlineData(0)]
    public void Quantize_BadBlockSize_NamesParameterAndValue(int blockSize)
    {
        using var w = ones(128);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Blockwise4Bit.Quantize(w, QuantType.Nf4, blockSize));
        Assert.Equal("blockSize", e.ParamName);
        Assert.Contains(blockSize.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
        Assert.Contains("power of two", e.Message);
    }

    [Theory]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Float64)]
    public void Quantize_NonFloatInput_NamesParameterAndDtype(ScalarType dtype)
    {
        using var w = ones(new long[] { 4, 64 }, dtype: dtype);
        var e = Assert.Throws<ArgumentException>(() => Blockwise4Bit.Quantize(w));
        Assert.Equal("x", e.ParamName);
        Assert.Contains(dtype.ToString(), e.Message);
    }

    [Fact]
    public void Dequantize_IntegerComputeDtype_Throws()
    {
        using var w = ones(64);
        using var state = Blockwise4Bit.Quantize(w);
        var e = Assert.Throws<ArgumentException>(() => Blockwise4Bit.Dequantize(state, ScalarType.Int32));
        Assert.Equal("computeDtype", e.ParamName);
    }
}
