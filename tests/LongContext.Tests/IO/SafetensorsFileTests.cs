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
        string path = Path.Combine(Path.GetTempPath(), $"lc-{Guid.NewGuid():N}.safetensors");
        try
        {
            var gen = new Generator(7);
            var original = new Dictionary<string, Tensor>
            {
                ["a.f32"] = randn(3, 5, generator: gen),
                ["b.bf16"] = randn(4, generator: gen).to(bfloat16),
                ["c.i64"] = arange(6, dtype: int64).reshape(2, 3),
                ["d.u8"] = tensor(new byte[] { 0, 15, 240, 255 }),
                ["e.view"] = randn(4, 6, generator: gen).t(), // non-contiguous
            };
            SafetensorsFile.Save(path, original);
            var loaded = SafetensorsFile.Load(path);
            Assert.Equal(original.Keys.OrderBy(k => k), loaded.Keys.OrderBy(k => k));
            foreach (var (k, t) in original)
            {
                Assert.Equal(t.dtype, loaded[k].dtype);
                Assert.Equal(t.shape, loaded[k].shape);
                Assert.True(t.eq(loaded[k]).all().item<bool>(), k);
            }
            Assert.Equal(new long[] { 6, 4 }, SafetensorsFile.ReadShapes(path)["e.view"]);
            Assert.Equal("pt", SafetensorsFile.ReadMetadata(path)["format"]);
            using var raw = File.OpenRead(path);
            var len = new byte[8];
            raw.ReadExactly(len);
            Assert.Equal(0UL, BitConverter.ToUInt64(len) % 8); // header padded to 8 bytes like the reference writer
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Save_WritesTheGivenMetadata()
    {
        string path = Path.Combine(Path.GetTempPath(), $"lc-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var t = arange(3, dtype: float32);
            SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["t"] = t }, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "x y" });
            var meta = SafetensorsFile.ReadMetadata(path);
            Assert.Equal("x y", meta["note"]);
            Assert.Equal(new float[] { 0, 1, 2 }, SafetensorsFile.Load(path)["t"].data<float>().ToArray());
        }
        finally { File.Delete(path); }
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
}
