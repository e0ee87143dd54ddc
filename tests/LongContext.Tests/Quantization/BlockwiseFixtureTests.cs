using System.Globalization;
using System.Text.Json;
using LongContext.IO;
using LongContext.Quantization;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Quantization;

/// <summary>
/// Every case of every <c>quant/*.safetensors</c> file against a port of bitsandbytes' CUDA kernels (see the fixture
/// README): packed bytes, absmax and the double-quantization codes, scales and offset exactly; dequantized values to
/// 1e-7 (single float32 products, compared as values: FP4's code 8 is -0.0 in the kernel and +0.0 in quant_map).
/// Keys and metadata a fixture set may omit are checked only where present.
/// </summary>
[Trait(Category.Name, Category.Quantization)]
[Trait(Category.Name, Category.Reference)]
public sealed class BlockwiseFixtureTests
{
    private const double ValueTolerance = 1e-7;

    /// <summary>One row per (file, case, quant type) with packed codes in the fixture folder.</summary>
    public static TheoryData<string, string, string> Cases() => CasesWith("packed");

    /// <summary>The rows whose set holds double-quantization codes.</summary>
    public static TheoryData<string, string, string> DoubleQuantCases() => CasesWith("dq.absmax_code");

    /// <summary>One row per fixture file.</summary>
    public static TheoryData<string> Files() => Fixtures.FileCases("quant", "*.safetensors");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Quantize_PackedBytesEqualTheKernels(string file, string name, string qt)
    {
        using var scope = NewDisposeScope();
        var c = Load(file, name, qt, "packed");
        using var state = QuantizeCase(c, doubleQuant: false);
        TensorAssert.Equal(state.Packed, c.Tensors[$"{name}.{qt}.packed"].reshape(-1), $"{file}:{name}.{qt}.packed");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Quantize_AbsmaxEqualsTheKernels(string file, string name, string qt)
    {
        using var scope = NewDisposeScope();
        var c = Load(file, name, qt, "absmax");
        if (!c.Tensors.TryGetValue($"{name}.{qt}.absmax", out Tensor? expected)) return;
        using var state = QuantizeCase(c, doubleQuant: false);
        TensorAssert.Equal(state.Absmax, expected.reshape(-1), $"{file}:{name}.{qt}.absmax");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Dequantize_EqualsTheKernels(string file, string name, string qt)
    {
        using var scope = NewDisposeScope();
        var c = Load(file, name, qt, "dequantized");
        if (!c.Tensors.TryGetValue($"{name}.{qt}.dequantized", out Tensor? expected)) return;
        using var state = QuantizeCase(c, doubleQuant: false);
        var deq = Blockwise4Bit.Dequantize(state, ScalarType.Float32);
        TensorAssert.Close(deq, expected, ValueTolerance, $"{file}:{name}.{qt}.dequantized");
    }

    [Theory]
    [MemberData(nameof(DoubleQuantCases))]
    public void DoubleQuant_AbsmaxCodesEqualTheKernels(string file, string name, string qt)
    {
        using var scope = NewDisposeScope();
        var c = Load(file, name, qt, "dq.absmax_code");
        using var state = QuantizeCase(c, doubleQuant: true);
        TensorAssert.Equal(state.Absmax, c.Tensors[$"{name}.{qt}.dq.absmax_code"].reshape(-1), $"{file}:{name}.{qt}.dq.absmax_code");
    }

    [Theory]
    [MemberData(nameof(DoubleQuantCases))]
    public void DoubleQuant_NestedScalesEqualTheKernels(string file, string name, string qt)
    {
        using var scope = NewDisposeScope();
        var c = Load(file, name, qt, "dq.absmax_scale");
        if (!c.Tensors.TryGetValue($"{name}.{qt}.dq.absmax_scale", out Tensor? expected)) return;
        using var state = QuantizeCase(c, doubleQuant: true);
        TensorAssert.Equal(state.Nested!.Absmax, expected.reshape(-1), $"{file}:{name}.{qt}.dq.absmax_scale");
    }

    [Theory]
    [MemberData(nameof(DoubleQuantCases))]
    public void DoubleQuant_OffsetIsTheFloat32NearestTheExactMean(string file, string name, string qt)
    {
        using var scope = NewDisposeScope();
        var c = Load(file, name, qt, "dq.offset");
        if (!c.Tensors.TryGetValue($"{name}.{qt}.dq.offset", out Tensor? expected)) return;
        using var state = QuantizeCase(c, doubleQuant: true);
        float want = expected.reshape(-1)[0].item<float>();
        Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(state.Nested!.Offset),
            $"{file}:{name}.{qt}.dq.offset: {state.Nested.Offset:R} vs {want:R}");
    }

    [Theory]
    [MemberData(nameof(DoubleQuantCases))]
    public void DoubleQuant_DequantizedAbsmaxEqualsTheKernels(string file, string name, string qt)
    {
        using var scope = NewDisposeScope();
        var c = Load(file, name, qt, "dq.absmax_dequantized");
        if (!c.Tensors.TryGetValue($"{name}.{qt}.dq.absmax_dequantized", out Tensor? expected)) return;
        using var state = QuantizeCase(c, doubleQuant: true);
        TensorAssert.Close(state.DequantizedAbsmax(), expected.reshape(-1), ValueTolerance, $"{file}:{name}.{qt}.dq.absmax_dequantized");
    }

    [Theory]
    [MemberData(nameof(DoubleQuantCases))]
    public void DoubleQuant_DequantizeEqualsTheKernels(string file, string name, string qt)
    {
        using var scope = NewDisposeScope();
        var c = Load(file, name, qt, "dq.dequantized");
        if (!c.Tensors.TryGetValue($"{name}.{qt}.dq.dequantized", out Tensor? expected)) return;
        using var state = QuantizeCase(c, doubleQuant: true);
        TensorAssert.Close(Blockwise4Bit.Dequantize(state, ScalarType.Float32), expected, ValueTolerance, $"{file}:{name}.{qt}.dq.dequantized");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Codebooks_EqualTheQuantMapsBnbStores_BitForBit(string file)
    {
        var meta = SafetensorsFile.ReadMetadata(Path.Combine(Fixtures.Folder("quant"), file));
        foreach (var (key, type) in new[] { ("codebook_nf4", QuantType.Nf4), ("codebook_fp4", QuantType.Fp4) })
        {
            if (!meta.TryGetValue(key, out string? json)) continue;
            float[] expected = JsonSerializer.Deserialize<float[]>(json)!;
            float[] actual = Codebooks.For(type);
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Codebooks_DynamicMapEqualsTheNestedQuantMap_ToTwoUlps(string file)
    {
        // create_dynamic_map() runs on the installed PyTorch's float32 linspace; the libtorch under TorchSharp and the
        // PyTorch 1.13 that made the shared set differ in 42 of the 256 entries, by one or two ulps.
        var meta = SafetensorsFile.ReadMetadata(Path.Combine(Fixtures.Folder("quant"), file));
        if (!meta.TryGetValue("codebook_dynamic8", out string? json)) return;
        float[] expected = JsonSerializer.Deserialize<float[]>(json)!;
        float[] actual = Codebooks.DynamicMap8Bit;
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(BitConverter.SingleToInt32Bits(expected[i]) - BitConverter.SingleToInt32Bits(actual[i])) <= 2,
                $"dynamic map entry {i}: {actual[i]:R} vs {expected[i]:R}");
    }

    // NestedMap: the set's codebook_dynamic8 (the map bnb double-quantized with), or null for the library's own.
    private sealed record Case(string Name, string Qt, int BlockSize, ScalarType InputDtype, float[]? NestedMap, Dictionary<string, Tensor> Tensors);

    private static TheoryData<string, string, string> CasesWith(string suffix)
    {
        var data = new TheoryData<string, string, string>();
        foreach (string file in Fixtures.Files("quant", "*.safetensors"))
        {
            var shapes = SafetensorsFile.ReadShapes(Path.Combine(Fixtures.Folder("quant"), file));
            foreach (string key in shapes.Keys.Where(k => k.EndsWith(".input", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            {
                string name = key[..^".input".Length];
                foreach (string qt in new[] { "nf4", "fp4" })
                    if (shapes.ContainsKey($"{name}.{qt}.{suffix}")) data.Add(file, name, qt);
            }
        }
        return data;
    }

    private static Case Load(string file, string name, string qt, string key)
    {
        string path = Path.Combine(Fixtures.Folder("quant"), file);
        var meta = SafetensorsFile.ReadMetadata(path);
        int blockSize = int.Parse(meta[$"{name}.blocksize"], CultureInfo.InvariantCulture);
        ScalarType dtype = !meta.TryGetValue($"{name}.input_dtype", out string? d) ? ScalarType.Float32
            : TorchDtypeNames.TryParse(d, out ScalarType stated) && stated is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 ? stated
            : throw new InvalidDataException($"{file}: {name}.input_dtype '{d}' is not float32, bfloat16 or float16.");
        var keys = new[] { $"{name}.input", $"{name}.{qt}.{key}" };
        var shapes = SafetensorsFile.ReadShapes(path);
        var tensors = SafetensorsFile.Load(path, keys.Where(shapes.ContainsKey));
        float[]? map = meta.TryGetValue("codebook_dynamic8", out string? m) ? JsonSerializer.Deserialize<float[]>(m) : null;
        return new Case(name, qt, blockSize, dtype, map, tensors);
    }

    // The input in its stated dtype (the float32 values are exact there, so the codes are the same); double quantization
    // with the set's own 8-bit map, as bnb built it with the PyTorch that made the set.
    private static QuantState4Bit QuantizeCase(Case c, bool doubleQuant)
    {
        var input = c.Tensors[$"{c.Name}.input"].to(c.InputDtype);
        QuantType type = c.Qt == "nf4" ? QuantType.Nf4 : QuantType.Fp4;
        var state = Blockwise4Bit.Quantize(input, type, c.BlockSize, doubleQuant, doubleQuant ? c.NestedMap : null);
        Assert.Equal(c.InputDtype, state.OriginalDtype);
        return state;
    }
}
