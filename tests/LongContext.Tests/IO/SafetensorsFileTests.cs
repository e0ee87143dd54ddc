using LongContext.IO;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.IO;

[Trait(Category.Name, Category.Build)]
public sealed class SafetensorsFileTests
{
    [Fact]
    public void SaveThenLoad_RoundTripsEveryDtypeBitForBit()
    {
        using var folder = new TempFolder();
        string path = folder.File("all.safetensors");
        var gen = new Generator(7);
        var original = new Dictionary<string, Tensor>
        {
            ["a.f32"] = randn(3, 5, generator: gen),
            ["b.bf16"] = randn(4, generator: gen).to(bfloat16),
            ["c.i64"] = arange(6, dtype: int64).reshape(2, 3),
            ["d.u8"] = tensor(new byte[] { 0, 15, 240, 255 }),
            ["e.view"] = randn(4, 6, generator: gen).t(), // non-contiguous
            ["f.f16"] = randn(2, 2, generator: gen).to(float16),
            ["g.f64"] = randn(3, generator: gen, dtype: float64),
            ["h.i32"] = tensor(new[] { int.MinValue, -1, 0, int.MaxValue }),
            ["i.i16"] = tensor(new short[] { short.MinValue, 7, short.MaxValue }),
            ["j.i8"] = tensor(new sbyte[] { sbyte.MinValue, 0, sbyte.MaxValue }),
            ["k.bool"] = tensor(new[] { true, false, true }),
            ["l.scalar"] = tensor(3.5f),
            ["m.empty"] = zeros(0, 3),
        };
        SafetensorsFile.Save(path, original);
        var loaded = SafetensorsFile.Load(path);
        Assert.Equal(original.Keys.Order(), loaded.Keys.Order());
        foreach (var (k, t) in original)
        {
            Assert.Equal(t.dtype, loaded[k].dtype);
            Assert.Equal(t.shape, loaded[k].shape);
            Assert.True(t.eq(loaded[k]).all().item<bool>(), k);
        }
        Assert.Equal(new long[] { 6, 4 }, SafetensorsFile.ReadShapes(path)["e.view"]);
        Assert.Equal("pt", SafetensorsFile.ReadMetadata(path)["format"]);
        byte[] raw = File.ReadAllBytes(path);
        Assert.Equal(0UL, BitConverter.ToUInt64(raw, 0) % 8); // header padded to 8 bytes like the reference writer
    }

    [Fact]
    public void Save_WritesTheGivenMetadata()
    {
        using var folder = new TempFolder();
        string path = folder.File("meta.safetensors");
        using var t = arange(3, dtype: float32);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["t"] = t }, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "x y" });
        var meta = SafetensorsFile.ReadMetadata(path);
        Assert.Equal("x y", meta["note"]);
        Assert.Equal(new float[] { 0, 1, 2 }, SafetensorsFile.Load(path)["t"].data<float>().ToArray());
    }

    /// <summary>
    /// Files written by Python (transformers / peft / the fixture generators over huggingface/safetensors) that carry
    /// at most one metadata entry: the reference writer orders a larger metadata map by hash, so only these have one
    /// byte layout to reproduce.
    /// </summary>
    public static TheoryData<string> PythonWrittenFiles()
    {
        var data = new TheoryData<string>();
        if (!Directory.Exists(Fixtures.Root)) return data;
        foreach (string file in Directory.EnumerateFiles(Fixtures.Root, "*.safetensors", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            if (SafetensorsFile.ReadMetadata(file).Count <= 1) data.Add(Path.GetRelativePath(Fixtures.Root, file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(PythonWrittenFiles))]
    public void Save_OfAPythonWrittenFile_ReproducesItsBytes(string relative)
    {
        string file = Path.Combine(Fixtures.Root, relative);
        using var folder = new TempFolder();
        string copy = folder.File("copy.safetensors");
        using var scope = NewDisposeScope();
        var tensors = SafetensorsFile.Load(file);
        SafetensorsFile.Save(copy, tensors, SafetensorsFile.ReadMetadata(file));
        Assert.Equal(File.ReadAllBytes(file), File.ReadAllBytes(copy));
    }

    [Fact]
    public void ReadMetadata_ReturnsTheHeaderMapOfAPythonWrittenFile()
    {
        string file = Path.Combine(Fixtures.Folder("quant"), "nf4_fp4_blockwise.safetensors");
        if (!File.Exists(file)) return; // another fixture set may not carry quant data
        var meta = SafetensorsFile.ReadMetadata(file);
        Assert.True(meta.ContainsKey("codebook_nf4"));
    }

    [Fact]
    public void Load_MissingFile_NamesThePath()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Load("/nonexistent/x.safetensors"));
        Assert.Contains("/nonexistent/x.safetensors", ex.Message);
    }

    [Fact]
    public void Load_KeyNotInTheFile_NamesKeyAndFile()
    {
        using var folder = new TempFolder();
        string path = folder.File("one.safetensors");
        using var t = ones(2);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["t"] = t });
        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path, ["u"]));
        Assert.Contains("'u'", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(12)] // not a multiple of the element size: pieces round down to whole elements
    [InlineData(4096)]
    public void Read_InPieces_EqualsTheStoredValues(int chunkBytes)
    {
        using var folder = new TempFolder();
        string path = folder.File("chunks.safetensors");
        using var t = arange(1000, dtype: float64).reshape(10, 100);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["t"] = t });
        using var reader = SafetensorsReader.Open(path, chunkBytes);
        using var read = reader.Read("t");
        TensorAssert.Equal(read, t, "chunked read");
    }

    [Fact]
    public void ReadInto_ContiguousParameterOfTheStoredDtype_FillsItInPlace()
    {
        using var folder = new TempFolder();
        string path = folder.File("p.safetensors");
        using var stored = arange(12, dtype: float32).reshape(3, 4);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["w"] = stored });
        using var destination = zeros(3, 4).requires_grad_();
        using var reader = SafetensorsReader.Open(path);
        reader.ReadInto("w", destination);
        TensorAssert.Equal(destination.detach(), stored, "in place");
    }

    [Fact]
    public void ReadInto_AnotherDtype_ConvertsAsTensorTo()
    {
        using var folder = new TempFolder();
        string path = folder.File("bf16.safetensors");
        using var source = randn(5, 7, generator: new Generator(3)).to(bfloat16);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["w"] = source });
        using var destination = zeros(5, 7, dtype: float32);
        using var reader = SafetensorsReader.Open(path);
        reader.ReadInto("w", destination);
        using var expected = source.to(float32);
        TensorAssert.Equal(destination, expected, "bf16 -> f32");
    }

    [Fact]
    public void ReadInto_NonContiguousDestination_FillsEveryElement()
    {
        using var folder = new TempFolder();
        string path = folder.File("t.safetensors");
        using var stored = arange(6, dtype: float32).reshape(3, 2);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["w"] = stored });
        using var backing = zeros(2, 3);
        using var destination = backing.t(); // (3, 2) view, not contiguous
        using var reader = SafetensorsReader.Open(path);
        reader.ReadInto("w", destination);
        TensorAssert.Equal(destination.contiguous(), stored, "through a transposed view");
    }

    [Fact]
    public void ReadInto_ShapeDiffersFromTheDestination_NamesTensorAndShapes()
    {
        using var folder = new TempFolder();
        string path = folder.File("t.safetensors");
        using var stored = zeros(3, 2);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["w"] = stored });
        using var destination = zeros(2, 3);
        using var reader = SafetensorsReader.Open(path);
        var ex = Assert.Throws<InvalidDataException>(() => reader.ReadInto("w", destination));
        Assert.Contains("'w'", ex.Message);
        Assert.Contains("[3, 2]", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
    }
}
