using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Rope;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

[Trait(Category.Name, Category.Model)]
public sealed class LlamaConfigTests
{
    internal static JsonObject TinyJson() => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["model_type"] = "llama",
        ["vocab_size"] = 32,
        ["hidden_size"] = 16,
        ["intermediate_size"] = 24,
        ["num_hidden_layers"] = 2,
        ["num_attention_heads"] = 4,
        ["num_key_value_heads"] = 2,
        ["rms_norm_eps"] = 1e-5,
        ["max_position_embeddings"] = 64,
        ["hidden_act"] = "silu",
        ["torch_dtype"] = "float32",
        ["bos_token_id"] = 1,
        ["rope_theta"] = 10000.0,
    };

    [Fact]
    public void FromJson_ReadsFieldsAndDefaults()
    {
        var c = LlamaConfig.FromJson(TinyJson());
        Assert.Equal(LlamaArchitectures.Llama, c.Architecture);
        Assert.Equal(4, c.HeadDim);                // hidden / heads when head_dim is absent
        Assert.Equal(2, c.NumKeyValueHeads);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal(RopeType.Default, c.Rope.Type);
        Assert.Equal(1e-5, c.RmsNormEps);
    }

    [Fact]
    public void FixtureConfig_ReadsLinearRope()
    {
        foreach (string dir in Directory.EnumerateDirectories(Fixtures.Folder("models")))
        {
            if (!File.Exists(Path.Combine(dir, "config.json"))) continue;
            var c = LlamaConfig.Load(dir);
            Assert.True(c.HiddenSize > 0);
            Assert.Equal(c, LlamaConfig.FromJson(c.ToJson()) with { Source = c.Source });
        }
    }

    [Theory]
    [InlineData("Qwen2ForCausalLM", "Qwen2")]
    [InlineData("GPT2LMHeadModel", "GPT2LMHeadModel")]
    public void UnknownArchitecture_Throws_NamingIt(string architecture, string mentioned)
    {
        var json = TinyJson();
        json["architectures"] = new JsonArray(architecture);
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(json));
        Assert.Contains(mentioned, ex.Message, StringComparison.Ordinal);
        Assert.Contains("LlamaForCausalLM", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("hidden_act", "gelu", "hidden_act 'gelu'")]
    [InlineData("sliding_window", 4096, "sliding_window 4096")]
    [InlineData("quantization_config", "x", "quantization_config")]
    [InlineData("some_new_switch", true, "some_new_switch")]
    public void MathChangingFields_Throw_NamingThem(string field, object value, string expected)
    {
        var json = TinyJson();
        json[field] = JsonValue.Create(value);
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(json));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownField_AcceptedWhenTheCallerVouches()
    {
        var json = TinyJson();
        json["my_comment"] = "hello";
        Assert.Equal(16, LlamaConfig.FromJson(json, acceptFields: ["my_comment"]).HiddenSize);
    }

    [Fact]
    public void HeadsNotMultipleOfKvHeads_Throws_NamingBoth()
    {
        var json = TinyJson();
        json["num_key_value_heads"] = 3;
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(json));
        Assert.Contains("NumKeyValueHeads (3)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingRequiredField_Throws_NamingIt()
    {
        var json = TinyJson();
        json.Remove("intermediate_size");
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(json));
        Assert.Contains("intermediate_size", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MistralWithoutSlidingWindow_IsAccepted()
    {
        var json = TinyJson();
        json["architectures"] = new JsonArray("MistralForCausalLM");
        json["model_type"] = "mistral";
        json["sliding_window"] = null;
        Assert.Equal(LlamaArchitectures.Mistral, LlamaConfig.FromJson(json).Architecture);
    }
}

[Trait(Category.Name, Category.Model)]
public sealed class LlamaCheckpointErrorTests : IDisposable
{
    private readonly string folder = Path.Combine(Path.GetTempPath(), $"lc-llama-bad-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private Dictionary<string, Tensor> WriteTiny()
    {
        var config = LlamaConfig.FromJson(LlamaConfigTests.TinyJson());
        config.Save(folder);
        var tensors = LlamaCheckpoint.ExpectedParameters(config).ToDictionary(kv => kv.Key, kv => randn(kv.Value));
        return tensors;
    }

    [Fact]
    public void MissingTensor_Throws_NamingTheKey()
    {
        var t = WriteTiny();
        t.Remove("model.layers.1.mlp.up_proj.weight");
        SafetensorsFile.Save(Path.Combine(folder, LlamaCheckpoint.WeightsFile), t);
        var ex = Assert.Throws<InvalidDataException>(() => LlamaCheckpoint.Load(folder));
        Assert.Contains("'model.layers.1.mlp.up_proj.weight'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MisShapedTensor_Throws_NamingKeyAndShapes()
    {
        var t = WriteTiny();
        t["model.norm.weight"] = randn(17);
        SafetensorsFile.Save(Path.Combine(folder, LlamaCheckpoint.WeightsFile), t);
        var ex = Assert.Throws<InvalidDataException>(() => LlamaCheckpoint.Load(folder));
        Assert.Contains("'model.norm.weight' has shape [17]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[16]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnexpectedTensor_Throws_NamingIt()
    {
        var t = WriteTiny();
        t["model.layers.0.self_attn.q_norm.weight"] = randn(4);
        SafetensorsFile.Save(Path.Combine(folder, LlamaCheckpoint.WeightsFile), t);
        var ex = Assert.Throws<InvalidDataException>(() => LlamaCheckpoint.Load(folder));
        Assert.Contains("model.layers.0.self_attn.q_norm.weight", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ShardedIndex_LoadsTheSameAsOneFile()
    {
        var t = WriteTiny();
        var keys = t.Keys.Order(StringComparer.Ordinal).ToArray();
        var first = keys.Take(keys.Length / 2).ToDictionary(k => k, k => t[k]);
        var second = keys.Skip(keys.Length / 2).ToDictionary(k => k, k => t[k]);
        SafetensorsFile.Save(Path.Combine(folder, "model-00001-of-00002.safetensors"), first);
        SafetensorsFile.Save(Path.Combine(folder, "model-00002-of-00002.safetensors"), second);
        var map = new JsonObject();
        foreach (var k in first.Keys) map[k] = "model-00001-of-00002.safetensors";
        foreach (var k in second.Keys) map[k] = "model-00002-of-00002.safetensors";
        File.WriteAllText(Path.Combine(folder, LlamaCheckpoint.IndexFile), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());

        using var model = LlamaCheckpoint.Load(folder);
        foreach (var (name, p) in model.named_parameters()) TensorAssert.Equal(p, t[name], name);
    }

    [Fact]
    public void MissingWeights_Throws_NamingBothFileNames()
    {
        WriteTiny();
        var ex = Assert.Throws<FileNotFoundException>(() => LlamaCheckpoint.Load(folder));
        Assert.Contains(LlamaCheckpoint.WeightsFile, ex.Message, StringComparison.Ordinal);
        Assert.Contains(LlamaCheckpoint.IndexFile, ex.Message, StringComparison.Ordinal);
    }
}
