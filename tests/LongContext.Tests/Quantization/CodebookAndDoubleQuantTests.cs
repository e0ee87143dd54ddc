using LongContext.Quantization;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Quantization;

[Trait(Category.Name, Category.Quantization)]
public sealed class CodebookAndDoubleQuantTests
{
    /// <summary>The library's dynamic map (null) or a caller's: 256 evenly spaced values in [-1, 1].</summary>
    public static TheoryData<string, int, int> DoubleQuantRows() => new()
    {
        { "dynamic map", 64, 8192 },
        { "dynamic map", 128, 100_003 },
        { "dynamic map", 32, 700 },
        { "linear map", 64, 8192 },
        { "linear map", 32, 700 },
    };

    private static float[]? MapOf(string name) => name == "linear map"
        ? Enumerable.Range(0, 256).Select(i => (float)(-1 + 2.0 * i / 255)).ToArray()
        : null;

    [Theory]
    [MemberData(nameof(DoubleQuantRows))]
    public void DoubleQuant_DequantizedAbsmax_IsTheNearestMapValueTimesNestedScalePlusOffset(string mapName, int blockSize, int n)
    {
        using var scope = NewDisposeScope();
        var w = randn(n, generator: new Generator(11)) * 0.02;
        using var plain = Blockwise4Bit.Quantize(w, QuantType.Nf4, blockSize);
        using var nested = Blockwise4Bit.Quantize(w, QuantType.Nf4, blockSize, doubleQuant: true, nestedMap: MapOf(mapName));
        TensorAssert.Equal(nested.Packed, plain.Packed, "packed codes do not depend on double quantization");
        Assert.NotNull(nested.Nested);
        Assert.Equal(256, nested.Nested!.BlockSize);

        float[] absmax = plain.Absmax.data<float>().ToArray();
        float[] deq = nested.DequantizedAbsmax().data<float>().ToArray();
        float[] nestedScale = nested.Nested.Absmax.data<float>().ToArray();
        // The offset is the float32 nearest the exact mean (the float64 mean rounded once; n is small enough here).
        double offset = absmax.Select(a => (double)a).Average();
        Assert.Equal((float)offset, nested.Nested.Offset);
        float[] map = MapOf(mapName) ?? Codebooks.DynamicMap8Bit;
        Assert.Equal(map, nested.Nested.Map);
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
    [InlineData(QuantType.Nf4, 63, 32)]
    [InlineData(QuantType.Fp4, 63, 32)]
    [InlineData(QuantType.Nf4, 1023, 32)]
    [InlineData(QuantType.Fp4, 4095, 4096)]
    public void RoundTrip_OddCountWhosePaddedPairFillsTheLastBlock_GivesBackCodebookValues(QuantType type, int n, int blockSize)
    {
        // n + 1 is a whole number of blocks: the packed codes cover every block, the last nibble is padding. Inputs are
        // codebook values times a power-of-two scale, each block led by +scale (code value 1), so dequantize(quantize(x))
        // must return x exactly.
        using var scope = NewDisposeScope();
        float[] code = Codebooks.For(type);
        const float scale = 0.5f;
        var values = new float[n];
        for (int i = 0; i < n; i++) values[i] = i % blockSize == 0 ? scale : code[(i * 7) % 16] * scale;
        var x = tensor(values);
        using var state = Blockwise4Bit.Quantize(x, type, blockSize);
        TensorAssert.Equal(Blockwise4Bit.Dequantize(state), x, $"{type} n={n} block {blockSize}");
    }

    /// <summary>(row name, map, doubleQuant): a nested map that Quantize refuses.</summary>
    public static TheoryData<string, float[], bool> BadNestedMaps()
    {
        float[] good = Codebooks.DynamicMap8Bit;
        float[] swapped = (float[])good.Clone();
        (swapped[10], swapped[11]) = (swapped[11], swapped[10]);
        float[] withNaN = (float[])good.Clone();
        withNaN[200] = float.NaN;
        return new()
        {
            { "map without double quantization", good, false },
            { "255 entries", good[..255], true },
            { "two entries out of order", swapped, true },
            { "a NaN entry", withNaN, true },
        };
    }

    [Theory]
    [MemberData(nameof(BadNestedMaps))]
    public void Quantize_BadNestedMap_NamesTheParameter(string row, float[] map, bool doubleQuant)
    {
        _ = row; // names the row
        using var w = randn(4, 64, generator: new Generator(3));
        var e = Assert.Throws<ArgumentException>(() => Blockwise4Bit.Quantize(w, QuantType.Nf4, 64, doubleQuant, map));
        Assert.Equal("nestedMap", e.ParamName);
    }

    [Fact]
    public void ReplaceWeight_RequantizesWithTheStatesOwnNestedMap()
    {
        using var scope = NewDisposeScope();
        float[] map = MapOf("linear map")!;
        var w = randn(new long[] { 64, 256 }, generator: new Generator(6)) * 0.02;
        var dense = randn(new long[] { 64, 256 }, generator: new Generator(7)) * 0.03;
        using var layer = new Linear4Bit(Blockwise4Bit.Quantize(w, QuantType.Nf4, 32, doubleQuant: true, nestedMap: map));
        layer.ReplaceWeight(dense);
        using var expected = Blockwise4Bit.Quantize(dense, QuantType.Nf4, 32, doubleQuant: true, nestedMap: map);
        Assert.Equal(map, layer.State.Nested!.Map);
        TensorAssert.Equal(layer.State.Absmax, expected.Absmax, "8-bit absmax codes under the state's map");
    }

    /// <summary>bitsandbytes' FP4 table (<c>get_4bit_type("fp4")</c>: 0, 0.0625, 8, 12, 4, 6, 2, 3 and their negatives, over 12).</summary>
    private static readonly double[] Fp4Table =
        new double[] { 0, 0.0625, 8, 12, 4, 6, 2, 3, -0.0, -0.0625, -8, -12, -4, -6, -2, -3 }.Select(v => v / 12).ToArray();

    /// <summary>
    /// Gaussian weights (std 0.02, block 64) against a float64 blockwise quantizer written here: absmax = max |x| per
    /// block of 64 in row-major order, the table value nearest x / absmax (NF4: <see cref="Nf4Reference.Table"/>, FP4:
    /// the table above), times the block's scale: absmax itself, or under double quantization the scale decoded from
    /// the state's stored 8-bit code, nested scale and offset (map[code] * scale + offset, as bnb stores them). The
    /// library's values must equal the reference's but for at most 1 in 10^5 elements (values within float32 rounding of a
    /// decision threshold; the kernel's FP4 literals sit a few ulps off the midpoints; none occur with this seed), and
    /// its relative RMS error ||W - deq(W)|| / ||W|| the reference's to 1e-3 relative (what 5 such elements could move
    /// it). Elementwise, no error exceeds half the widest gap of the table times the block's absmax (NF4: between -1
    /// and -0.6962, 0.1519; FP4: between 2/3 and 1, 1/6), plus the 8-bit scale's own error.
    /// </summary>
    [Theory]
    [InlineData(QuantType.Nf4)]
    [InlineData(QuantType.Fp4)]
    public void RoundTrip_OnGaussianWeights_MatchesAFloat64NearestCodeQuantizer(QuantType type)
    {
        using var scope = NewDisposeScope();
        const int block = 64;
        var w = randn(new long[] { 512, 1024 }, generator: new Generator(3)) * 0.02;
        double[] x = w.to(float64).data<double>().ToArray();
        double[] table = type == QuantType.Nf4 ? Nf4Reference.Table.ToArray() : Fp4Table;
        int blocks = x.Length / block;
        var absmax = new double[blocks];
        for (int i = 0; i < x.Length; i++) absmax[i / block] = Math.Max(absmax[i / block], Math.Abs(x[i]));
        double[] sorted = table.Order().ToArray();
        double halfGap = Enumerable.Range(0, 15).Max(i => sorted[i + 1] - sorted[i]) / 2;   // NF4 (0.6962 - 1) / 2 = 0.1519, FP4 1/6
        foreach (bool dq in new[] { false, true })
        {
            using var state = Blockwise4Bit.Quantize(w, type, block, dq);
            double[] back = Blockwise4Bit.Dequantize(state, ScalarType.Float64).data<double>().ToArray();
            double[] scale = absmax;
            if (dq)
            {
                byte[] codes = state.Absmax.data<byte>().ToArray();
                float[] nestedScale = state.Nested!.Absmax.data<float>().ToArray();
                scale = codes.Select((c, i) => state.Nested.Map[c] * (double)nestedScale[i / state.Nested.BlockSize] + state.Nested.Offset).ToArray();
            }
            double errRef = 0, err = 0, norm = 0;
            int differ = 0;
            for (int i = 0; i < x.Length; i++)
            {
                double v = x[i] / absmax[i / block];
                double nearest = table.MinBy(t => Math.Abs(t - v));
                double reference = nearest * scale[i / block];
                errRef += (reference - x[i]) * (reference - x[i]);
                err += (back[i] - x[i]) * (back[i] - x[i]);
                norm += x[i] * x[i];
                if (Math.Abs(back[i] - reference) > 1e-6 * absmax[i / block]) differ++;
                Assert.True(Math.Abs(back[i] - x[i]) <= halfGap * absmax[i / block] + Math.Abs(scale[i / block] - absmax[i / block]) + 1e-9,
                    $"{type} doubleQuant={dq}: element {i} errs by {Math.Abs(back[i] - x[i]):E3}, block absmax {absmax[i / block]:E3}");
            }
            double rel = Math.Sqrt(err / norm), relRef = Math.Sqrt(errRef / norm);
            Assert.True(differ <= x.Length / 100_000, $"{type} doubleQuant={dq}: {differ} of {x.Length} elements decode other than the nearest code");
            Assert.True(Math.Abs(rel - relRef) <= 1e-3 * relRef, $"{type} doubleQuant={dq}: relative RMS error {rel:R}, float64 reference {relRef:R}");
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
