using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.IO;

/// <summary>Checkpoint folders on disk: sharded layout, replacement of an earlier layout, validation of every shard.</summary>
[Trait(Category.Name, Category.Model)]
public sealed class LlamaCheckpointFileTests
{
    private static readonly LlamaConfig Tiny = new()
    {
        VocabSize = 96, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 8, MaxPositionEmbeddings = 128,
    };

    private static LlamaForCausalLM NewModel(ScalarType dtype = ScalarType.Float32)
    {
        random.manual_seed(11);
        return new LlamaForCausalLM(Tiny, dtype);
    }

    private static void AssertSameParameters(LlamaForCausalLM expected, LlamaForCausalLM actual)
    {
        var a = actual.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var e = expected.named_parameters().ToList();
        Assert.Equal(e.Count, a.Count);
        foreach (var (key, p) in e) TensorAssert.Equal(a[key], p, key);
    }

    [Theory]
    [InlineData(ScalarType.Float32, "float32")]
    [InlineData(ScalarType.BFloat16, "bfloat16")]
    [InlineData(ScalarType.Float16, "float16")]
    [InlineData(ScalarType.Float64, "float64")]
    public void Save_WritesTorchDtypeAsPyTorchNamesIt(ScalarType dtype, string name)
    {
        using var folder = new TempFolder();
        using var model = NewModel(dtype);
        LlamaCheckpoint.Save(model, folder.Path);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder.Path, "config.json")))!.AsObject();
        Assert.Equal(name, (string?)config["torch_dtype"]);
    }

    [Fact]
    public void SaveSharded_WritesHfIndexAndShardsWithinTheLimit_AndLoadsBack()
    {
        using var folder = new TempFolder();
        using var model = NewModel();
        const long limit = 20_000; // bytes; the embedding (96 x 32 x 4 = 12,288 B) and lm_head fit, a few layers per shard
        LlamaCheckpoint.Save(model, folder.Path, limit);

        var index = JsonNode.Parse(File.ReadAllText(folder.File(LlamaCheckpoint.IndexFile)))!.AsObject();
        var weightMap = index["weight_map"]!.AsObject().ToDictionary(kv => kv.Key, kv => (string)kv.Value!);
        var expected = LlamaCheckpoint.ExpectedParameters(Tiny);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), weightMap.Keys.Order(StringComparer.Ordinal));
        long total = model.named_parameters().Sum(p => p.parameter.numel() * p.parameter.ElementSize);
        Assert.Equal(total, (long)index["metadata"]!["total_size"]!);

        string[] shards = weightMap.Values.Distinct().Order(StringComparer.Ordinal).ToArray();
        Assert.True(shards.Length > 1, "expected several shards");
        for (int i = 0; i < shards.Length; i++)
        {
            Assert.Equal($"model-{i + 1:D5}-of-{shards.Length:D5}.safetensors", shards[i]);
            var shapes = SafetensorsFile.ReadShapes(folder.File(shards[i]));
            Assert.Equal(weightMap.Where(kv => kv.Value == shards[i]).Select(kv => kv.Key).Order(StringComparer.Ordinal), shapes.Keys.Order(StringComparer.Ordinal));
            long bytes = shapes.Values.Sum(s => s.Aggregate(1L, (x, y) => x * y) * 4);
            Assert.True(bytes <= limit || shapes.Count == 1, $"{shards[i]} holds {bytes} bytes in {shapes.Count} tensors");
        }
        Assert.False(File.Exists(folder.File(LlamaCheckpoint.WeightsFile)));

        using var loaded = LlamaCheckpoint.Load(folder.Path);
        AssertSameParameters(model, loaded);
    }

    /// <summary>Invalid UTF-8 inside a shard name of the index (found by FileFuzzTests): was an InvalidOperationException from System.Text.Json.</summary>
    [Fact]
    public void LoadSharded_WithInvalidUtf8InTheIndex_IsInvalidData_NamingTheFile()
    {
        using var folder = new TempFolder();
        using (var model = NewModel()) LlamaCheckpoint.Save(model, folder.Path, 4096);
        string index = folder.File(LlamaCheckpoint.IndexFile);
        byte[] bytes = File.ReadAllBytes(index);
        int at = Array.IndexOf(bytes, (byte)'m', System.Text.Encoding.UTF8.GetString(bytes).IndexOf("\"model-", StringComparison.Ordinal) + 1);
        bytes[at] = 0xC3;
        bytes[at + 1] = 0x28;
        File.WriteAllBytes(index, bytes);
        var e = Assert.Throws<InvalidDataException>(() => LlamaCheckpoint.Load(folder.Path));
        Assert.Contains(index, e.Message);
        Assert.Contains("not valid UTF-8", e.Message);
    }

    [Fact]
    public void Save_SingleFileOverAShardedFolder_RemovesTheIndexAndItsShards()
    {
        using var folder = new TempFolder();
        using var model = NewModel();
        LlamaCheckpoint.Save(model, folder.Path, 20_000);
        File.WriteAllText(folder.File("tokenizer.json"), "{}"); // not a weight file: kept
        LlamaCheckpoint.Save(model, folder.Path);
        Assert.Equal(["config.json", LlamaCheckpoint.WeightsFile, "tokenizer.json"], folder.Names());
        using var loaded = LlamaCheckpoint.Load(folder.Path);
        AssertSameParameters(model, loaded);
    }

    [Fact]
    public void SaveSharded_OverASingleFileFolder_RemovesTheSingleFile()
    {
        // The loader prefers model.safetensors; a stale one would hide the new shards.
        using var folder = new TempFolder();
        using var first = NewModel();
        LlamaCheckpoint.Save(first, folder.Path);
        random.manual_seed(12);
        using var second = new LlamaForCausalLM(Tiny);
        LlamaCheckpoint.Save(second, folder.Path, 1_000_000_000);
        Assert.Equal(["config.json", "model-00001-of-00001.safetensors", LlamaCheckpoint.IndexFile], folder.Names());
        using var loaded = LlamaCheckpoint.Load(folder.Path);
        AssertSameParameters(second, loaded);
    }

    [Theory]
    [InlineData("model-00002-of-")] // the second shard, whatever the count
    [InlineData("model.safetensors.index.json")]
    [InlineData("config.json")]
    public void SaveSharded_FailingWhileWritingAFile_LeavesThePreviousFolderAsItWas(string failingFile)
    {
        using var folder = new TempFolder();
        using var first = NewModel();
        LlamaCheckpoint.Save(first, folder.Path, 40_000);
        var before = folder.Names().ToDictionary(n => n, n => File.ReadAllBytes(folder.File(n)));
        random.manual_seed(12);
        using var second = new LlamaForCausalLM(Tiny);
        Assert.Throws<IOException>(() => LlamaCheckpoint.Save(second, folder.Path, 20_000,
            (name, stream) => name.StartsWith(failingFile, StringComparison.Ordinal) ? new FailingStream(stream, 100) : stream));
        Assert.Equal(before.Keys, folder.Names()); // no temporary file left, no new shard renamed into place
        foreach (var (name, bytes) in before) Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(folder.File(name))), name);
        using var loaded = LlamaCheckpoint.Load(folder.Path);
        AssertSameParameters(first, loaded);
    }

    [Fact]
    public void Load_StoredBfloat16AsFloat32_EqualsTheUpcast()
    {
        using var folder = new TempFolder();
        using var model = NewModel(ScalarType.BFloat16);
        LlamaCheckpoint.Save(model, folder.Path, 20_000);
        using var loaded = LlamaCheckpoint.Load(folder.Path, ScalarType.Float32);
        var a = loaded.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (key, p) in model.named_parameters())
        {
            using var up = p.to(ScalarType.Float32);
            TensorAssert.Equal(a[key], up, key);
        }
    }

    [Fact]
    public void Load_AShardBreakingTheFormat_NamesTheShard()
    {
        using var folder = new TempFolder();
        using var model = NewModel();
        LlamaCheckpoint.Save(model, folder.Path, 20_000);
        string shard = folder.File("model-00002-of-" + Directory.GetFiles(folder.Path, "model-*").Length.ToString("D5") + ".safetensors");
        byte[] bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..^1]); // one byte short: the last tensor runs past the end
        var ex = Assert.Throws<InvalidDataException>(() => LlamaCheckpoint.Load(folder.Path));
        Assert.Contains(shard, ex.Message);
        Assert.Contains("past the end", ex.Message);
    }

    [Fact]
    public void Load_IndexNamingAFileOutsideTheFolder_IsRefused()
    {
        using var folder = new TempFolder();
        using var model = NewModel();
        LlamaCheckpoint.Save(model, folder.Path, 20_000);
        string indexPath = folder.File(LlamaCheckpoint.IndexFile);
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!.AsObject();
        index["weight_map"]!["model.norm.weight"] = "../elsewhere.safetensors";
        File.WriteAllText(indexPath, index.ToJsonString());
        var ex = Assert.Throws<InvalidDataException>(() => LlamaCheckpoint.Load(folder.Path));
        Assert.Contains("model.norm.weight", ex.Message);
    }

    [Fact]
    public void Load_WeightStoredAsInteger_IsRefusedBeforeTheModelIsBuilt()
    {
        using var folder = new TempFolder();
        using var model = NewModel();
        LlamaCheckpoint.Save(model, folder.Path);
        string weights = folder.File(LlamaCheckpoint.WeightsFile);
        using (var scope = NewDisposeScope())
        {
            var tensors = SafetensorsFile.Load(weights);
            tensors["model.norm.weight"] = tensors["model.norm.weight"].to(ScalarType.Int32);
            SafetensorsFile.Save(weights, tensors);
        }
        var ex = Assert.Throws<InvalidDataException>(() => LlamaCheckpoint.Load(folder.Path));
        Assert.Contains("model.norm.weight", ex.Message);
        Assert.Contains("I32", ex.Message);
    }
}
