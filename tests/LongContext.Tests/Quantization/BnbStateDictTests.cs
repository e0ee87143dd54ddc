using System.Text;
using System.Text.Json;
using LongContext.IO;
using LongContext.Quantization;
using LongContext.Tests.IO;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Quantization;

[Trait(Category.Name, Category.Quantization)]
public sealed class BnbStateDictTests
{
    [Theory]
    [InlineData(QuantType.Nf4, true)]
    [InlineData(QuantType.Fp4, false)]
    public void Linear4BitStateDict_UsesBnbKeys_AndRoundTripsThroughSafetensors(QuantType type, bool dq)
    {
        using var scope = NewDisposeScope();
        using var dense = nn.Linear(96, 33, dtype: ScalarType.BFloat16);
        using var q = Linear4Bit.FromLinear(dense, type, 64, dq);
        var sd = q.state_dict(prefix: "model.layers.0.mlp.up_proj");
        string w = "model.layers.0.mlp.up_proj.weight", qt = type == QuantType.Nf4 ? "nf4" : "fp4";
        var expectedKeys = new List<string> { w, $"{w}.absmax", $"{w}.quant_map", $"{w}.quant_state.bitsandbytes__{qt}", "model.layers.0.mlp.up_proj.bias" };
        if (dq) expectedKeys.AddRange(new[] { $"{w}.nested_absmax", $"{w}.nested_quant_map" });
        Assert.Equal(expectedKeys.Order(StringComparer.Ordinal), sd.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new long[] { 96 * 33 / 2, 1 }, sd[w].shape);
        Assert.Equal(dq ? ScalarType.Byte : ScalarType.Float32, sd[$"{w}.absmax"].dtype);

        string json = Encoding.UTF8.GetString(sd[$"{w}.quant_state.bitsandbytes__{qt}"].data<byte>().ToArray());
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(qt, doc.RootElement.GetProperty("quant_type").GetString());
        Assert.Equal(64, doc.RootElement.GetProperty("blocksize").GetInt32());
        Assert.Equal("bfloat16", doc.RootElement.GetProperty("dtype").GetString());
        Assert.Equal(new long[] { 33, 96 }, doc.RootElement.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(dq, doc.RootElement.TryGetProperty("nested_offset", out _));

        string path = Path.Combine(Path.GetTempPath(), $"lc-bnb-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafetensorsFile.Save(path, sd);
            var loaded = SafetensorsFile.Load(path);
            using var state = Bnb4BitStateDict.Read(loaded, w, new long[] { 33, 96 });
            TensorAssert.Equal(state.Packed, q.State.Packed, "packed");
            TensorAssert.Equal(state.Absmax, q.State.Absmax, "absmax");
            Assert.Equal(ScalarType.BFloat16, state.OriginalDtype);
            TensorAssert.Equal(Blockwise4Bit.Dequantize(state), q.DequantizeWeight(), "dequantized");
            if (dq) Assert.Equal(q.State.Nested!.Offset, state.Nested!.Offset);
        }
        finally { File.Delete(path); }
    }

    /// <summary>(fixture file, quant type) for each codebook a quant fixture file records.</summary>
    public static TheoryData<string, string> FixtureCodebooks()
    {
        var data = new TheoryData<string, string>();
        foreach (string file in Fixtures.Files("quant", "*.safetensors"))
        {
            var meta = SafetensorsFile.ReadMetadata(Path.Combine(Fixtures.Folder("quant"), file));
            foreach (string qt in new[] { "nf4", "fp4" })
                if (meta.ContainsKey($"codebook_{qt}")) data.Add(file, qt);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(FixtureCodebooks))]
    public void Write_QuantMapIsTheOneBnbStores_BitForBit(string file, string qt)
    {
        // bnb's get_4bit_type: FP4's entry 8 is +0.0 (its table lists the Python int -0).
        using var scope = NewDisposeScope();
        var meta = SafetensorsFile.ReadMetadata(Path.Combine(Fixtures.Folder("quant"), file));
        float[] expected = JsonSerializer.Deserialize<float[]>(meta[$"codebook_{qt}"])!;
        using var state = Blockwise4Bit.Quantize(randn(4, 64, generator: new Generator(1)), qt == "nf4" ? QuantType.Nf4 : QuantType.Fp4, 64);
        float[] written = Bnb4BitStateDict.Write(state)["weight.quant_map"].data<float>().ToArray();
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), written.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Read_PythonWrittenQuantState_Parses()
    {
        // As bitsandbytes writes it: json.dumps of as_dict's non-tensor items (Python spacing), and uint8 absmax codes.
        using var scope = NewDisposeScope();
        using var w = Blockwise4Bit.Quantize(randn(8, 64, generator: new Generator(2)), QuantType.Nf4, 64, doubleQuant: true);
        string pyJson = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [8, 64], " +
                        $"\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": {w.Nested!.Offset.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}}}";
        var dict = new Dictionary<string, Tensor>
        {
            ["weight"] = w.Packed.view(-1, 1),
            ["weight.absmax"] = w.Absmax,
            ["weight.quant_map"] = tensor(Codebooks.Nf4),
            ["weight.nested_absmax"] = w.Nested.Absmax,
            ["weight.nested_quant_map"] = tensor(Codebooks.DynamicMap8Bit),
            ["weight.quant_state.bitsandbytes__nf4"] = tensor(Encoding.UTF8.GetBytes(pyJson)),
        };
        using var state = Bnb4BitStateDict.Read(dict);
        Assert.Equal(ScalarType.Float16, state.OriginalDtype);
        TensorAssert.Equal(Blockwise4Bit.Dequantize(state, ScalarType.Float32), Blockwise4Bit.Dequantize(w, ScalarType.Float32), "dequantized");
    }

    [Theory]
    [InlineData(ScalarType.Float32, "float32")]
    [InlineData(ScalarType.BFloat16, "bfloat16")]
    [InlineData(ScalarType.Float16, "float16")]
    public void Write_NamesTheDtypeAsPyTorch_AndReadRestoresIt(ScalarType dtype, string name)
    {
        using var scope = NewDisposeScope();
        using var q = Blockwise4Bit.Quantize(randn(4, 64, generator: new Generator(1)).to(dtype), QuantType.Nf4, 64);
        var sd = Bnb4BitStateDict.Write(q);
        using var doc = JsonDocument.Parse(sd["weight.quant_state.bitsandbytes__nf4"].data<byte>().ToArray());
        Assert.Equal(name, doc.RootElement.GetProperty("dtype").GetString());
        using var state = Bnb4BitStateDict.Read(sd);
        Assert.Equal(dtype, state.OriginalDtype);
    }

    /// <summary>Every other PyTorch dtype name, and strings that name a compute dtype some other way (alias, safetensors, case).</summary>
    public static TheoryData<string> OtherDtypeNames()
    {
        var data = new TheoryData<string>();
        foreach (object[] row in TorchDtypeNamesTests.PyTorchNames)
            if ((ScalarType)row[1] is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16)) data.Add((string)row[0]);
        foreach (string name in new[] { "half", "BF16", "Float16", "" }) data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(OtherDtypeNames))]
    public void Read_DtypeOtherThanTheComputeDtypes_NamesKeyValueAndExpected(string dtype)
    {
        using var scope = NewDisposeScope();
        using var q = Blockwise4Bit.Quantize(randn(4, 64, generator: new Generator(1)), QuantType.Nf4, 64);
        const string key = "weight.quant_state.bitsandbytes__nf4";
        var sd = Bnb4BitStateDict.Write(q);
        string json = Encoding.UTF8.GetString(sd[key].data<byte>().ToArray()).Replace("\"dtype\":\"float32\"", $"\"dtype\":\"{dtype}\"", StringComparison.Ordinal);
        Assert.Contains($"\"dtype\":\"{dtype}\"", json);
        var bad = new Dictionary<string, Tensor>(sd) { [key] = tensor(Encoding.UTF8.GetBytes(json)) };
        var e = Assert.Throws<InvalidDataException>(() => Bnb4BitStateDict.Read(bad));
        Assert.Equal($"'{key}': dtype must be float32, bfloat16 or float16; got '{dtype}'.", e.Message);
    }

    [Fact]
    public void Read_WrongCodebook_WrongShape_UnknownKey_AreClearErrors()
    {
        using var scope = NewDisposeScope();
        using var q = Blockwise4Bit.Quantize(randn(4, 64, generator: new Generator(1)), QuantType.Nf4, 64);
        var good = Bnb4BitStateDict.Write(q);

        var wrongMap = new Dictionary<string, Tensor>(good) { ["weight.quant_map"] = tensor(Codebooks.Fp4) };
        var e1 = Assert.Throws<InvalidDataException>(() => Bnb4BitStateDict.Read(wrongMap));
        Assert.Contains("weight.quant_map", e1.Message);
        Assert.Contains("nf4", e1.Message);

        var e2 = Assert.Throws<InvalidDataException>(() => Bnb4BitStateDict.Read(good, "weight", new long[] { 64, 4 }));
        Assert.Contains("[4, 64]", e2.Message);
        Assert.Contains("[64, 4]", e2.Message);

        var extra = new Dictionary<string, Tensor>(good) { ["weight.SCB"] = ones(1) };
        var e3 = Assert.Throws<InvalidDataException>(() => Bnb4BitStateDict.Read(extra));
        Assert.Contains("SCB", e3.Message);

        var shortAbsmax = new Dictionary<string, Tensor>(good) { ["weight.absmax"] = ones(3) };
        var e4 = Assert.Throws<InvalidDataException>(() => Bnb4BitStateDict.Read(shortAbsmax));
        Assert.Contains("absmax", e4.Message);

        using var layer = new Linear4Bit(Blockwise4Bit.Quantize(randn(4, 64), QuantType.Nf4, 64));
        using var other = Blockwise4Bit.Quantize(randn(8, 64), QuantType.Nf4, 64);
        var e5 = Assert.Throws<ArgumentException>(() => layer.LoadState(other));
        Assert.Equal("state", e5.ParamName);
    }
}
