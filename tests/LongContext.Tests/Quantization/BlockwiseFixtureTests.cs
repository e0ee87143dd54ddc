using System.Text.Json;
using LongContext.IO;
using LongContext.Quantization;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Quantization;

/// <summary>Every case of every <c>quant/*.safetensors</c> file against the reference generator's bytes and values.</summary>
[Trait(Category.Name, Category.Quantization)]
[Trait(Category.Name, Category.Reference)]
public sealed class BlockwiseFixtureTests
{
    /// <summary>One row per (file, case, quant type) found in the fixture folder.</summary>
    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (string file in Fixtures.Files("quant", "*.safetensors"))
        {
            string path = Path.Combine(Fixtures.Folder("quant"), file);
            var shapes = SafetensorsFile.ReadShapes(path);
            foreach (string key in shapes.Keys.Where(k => k.EndsWith(".input", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            {
                string name = key[..^".input".Length];
                foreach (string qt in new[] { "nf4", "fp4" })
                    if (shapes.ContainsKey($"{name}.{qt}.packed")) data.Add(file, name, qt);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Quantize_MatchesReferencePackedBytesAbsmaxAndDequantized(string file, string name, string qt)
    {
        string path = Path.Combine(Fixtures.Folder("quant"), file);
        var meta = SafetensorsFile.ReadMetadata(path);
        int blockSize = int.Parse(meta[$"{name}.blocksize"], System.Globalization.CultureInfo.InvariantCulture);
        var t = SafetensorsFile.Load(path, new[] { $"{name}.input", $"{name}.{qt}.packed", $"{name}.{qt}.absmax", $"{name}.{qt}.dequantized" });
        QuantType type = qt == "nf4" ? QuantType.Nf4 : QuantType.Fp4;

        using var state = Blockwise4Bit.Quantize(t[$"{name}.input"], type, blockSize);
        TensorAssert.Equal(state.Packed, t[$"{name}.{qt}.packed"].reshape(-1), $"{file}:{name}.{qt}.packed");
        TensorAssert.Equal(state.Absmax, t[$"{name}.{qt}.absmax"].reshape(-1), $"{file}:{name}.{qt}.absmax");
        using var deq = Blockwise4Bit.Dequantize(state, ScalarType.Float32);
        TensorAssert.Close(deq, t[$"{name}.{qt}.dequantized"], 1e-7, $"{file}:{name}.{qt}.dequantized");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Codebooks_EqualTheFixtureHeaderCodebooks(string file, string name, string qt)
    {
        _ = name;
        var meta = SafetensorsFile.ReadMetadata(Path.Combine(Fixtures.Folder("quant"), file));
        float[] expected = JsonSerializer.Deserialize<float[]>(meta[$"codebook_{qt}"])!;
        float[] actual = Codebooks.For(qt == "nf4" ? QuantType.Nf4 : QuantType.Fp4);
        Assert.Equal(expected, actual);
    }
}
