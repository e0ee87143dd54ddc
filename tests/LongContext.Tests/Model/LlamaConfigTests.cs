using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Rope;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

/// <summary>
/// Reading config.json as HF's LlamaConfig / MistralConfig do (defaults, what HF ignores: accepted with a warning and
/// kept; what changes the math: refused naming the field), and LlamaConfig validated where it is built.
/// </summary>
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

    private static JsonObject TinyMistralJson()
    {
        var json = TinyJson();
        json["architectures"] = new JsonArray("MistralForCausalLM");
        json["model_type"] = "mistral";
        json["sliding_window"] = null;
        return json;
    }

    private static JsonObject Without(JsonObject json, string key)
    {
        json.Remove(key);
        return json;
    }

    private static JsonObject With(JsonObject json, string key, JsonNode? value)
    {
        json[key] = value;
        return json;
    }

    private static LlamaConfig Code() => new()
    {
        VocabSize = 32, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 4, MaxPositionEmbeddings = 64,
    };

    // ---- reading: fields and HF's defaults ----

    [Fact]
    public void FromJson_ReadsTheFields()
    {
        var c = LlamaConfig.FromJson(TinyJson());
        Assert.Equal(Code() with { RmsNormEps = 1e-5, Source = c.Source }, c);
    }

    [Fact]
    public void AbsentHeadDim_IsHiddenSizeOverHeads() => Assert.Equal(4, LlamaConfig.FromJson(TinyJson()).HeadDim);

    [Fact]
    public void AbsentRmsNormEps_IsOneMillionth() => Assert.Equal(1e-6, LlamaConfig.FromJson(Without(TinyJson(), "rms_norm_eps")).RmsNormEps);

    [Theory]
    [InlineData("LlamaConfig's default", "llama", 2048)]
    [InlineData("MistralConfig's default (4096 * 32)", "mistral", 131072)]
    public void AbsentMaxPositionEmbeddings_IsTheHfClassDefault(string why, string family, int expected)
    {
        var json = Without(family == "llama" ? TinyJson() : TinyMistralJson(), "max_position_embeddings");
        Assert.True(expected == LlamaConfig.FromJson(json).MaxPositionEmbeddings, why);
    }

    [Theory]
    [InlineData("llama, absent: num_attention_heads", "llama", false, 16)]
    [InlineData("mistral, absent: MistralConfig's default 8", "mistral", false, 8)]
    [InlineData("mistral, null: num_attention_heads", "mistral", true, 16)]
    public void NumKeyValueHeadsNotGiven_IsTheHfClassDefault(string why, string family, bool explicitNull, int expected)
    {
        var json = family == "llama" ? TinyJson() : TinyMistralJson();
        json["hidden_size"] = 32;
        json["num_attention_heads"] = 16;   // head dim 2
        if (explicitNull) json["num_key_value_heads"] = null;
        else json.Remove("num_key_value_heads");
        Assert.True(expected == LlamaConfig.FromJson(json).NumKeyValueHeads, why);
    }

    [Fact]
    public void PadTokenId_IsRead() => Assert.Equal(0, LlamaConfig.FromJson(With(TinyJson(), "pad_token_id", 0)).PadTokenId);

    [Fact]
    public void FixtureConfigs_RoundTripThroughToJson()
    {
        foreach (string dir in Directory.EnumerateDirectories(Fixtures.Folder("models")))
        {
            if (!File.Exists(Path.Combine(dir, "config.json"))) continue;
            var c = LlamaConfig.Load(dir);
            Assert.Equal(c, LlamaConfig.FromJson(c.ToJson()) with { Source = c.Source });
        }
    }

    [Fact]
    public void SameJson_ReadsToEqualConfigs() => Assert.Equal(LlamaConfig.FromJson(TinyJson()), LlamaConfig.FromJson(TinyJson()));

    // ---- what HF ignores: accepted, reported, kept ----

    [Fact]
    public void BookkeepingFields_GiveNoWarning() => Assert.Empty(LlamaConfig.FromJson(TinyJson()).Warnings);

    [Fact]
    public void UnknownField_IsAcceptedWithAWarningNamingIt()
    {
        var c = LlamaConfig.FromJson(With(TinyJson(), "some_new_switch", true));
        Assert.Contains("'some_new_switch'", Assert.Single(c.Warnings));
    }

    [Fact]
    public void UnknownField_IsKeptAndWrittenBack()
    {
        var c = LlamaConfig.FromJson(With(TinyJson(), "some_new_switch", true));
        Assert.Equal(JsonValueKind.True, c.Source!["some_new_switch"].ValueKind);
        Assert.True(c.ToJson()["some_new_switch"]!.GetValue<bool>());
    }

    [Fact]
    public void UnknownField_VouchedForByTheCaller_GivesNoWarning()
        => Assert.Empty(LlamaConfig.FromJson(With(TinyJson(), "my_comment", "hello"), acceptFields: ["my_comment"]).Warnings);

    [Fact]
    public void RopeKeyTheTypeDoesNotUse_IsAWarningOnTheConfig()
    {
        var json = With(TinyJson(), "rope_scaling", new JsonObject { ["type"] = "dynamic", ["factor"] = 2.0, ["original_max_position_embeddings"] = 32 });
        var c = LlamaConfig.FromJson(json);
        Assert.Equal(RopeParameters.Dynamic(2), c.Rope);
        Assert.Contains("rope_scaling.original_max_position_embeddings", Assert.Single(c.Warnings));
    }

    [Fact]
    public void TopLevelOriginalWindowWithDynamicRope_IsIgnoredWithAWarning()
    {
        var json = With(With(TinyJson(), "rope_scaling", new JsonObject { ["type"] = "dynamic", ["factor"] = 2.0 }), "original_max_position_embeddings", 32);
        var c = LlamaConfig.FromJson(json);
        Assert.Equal(RopeParameters.Dynamic(2), c.Rope);
        Assert.Contains("'original_max_position_embeddings'", Assert.Single(c.Warnings));
    }

    [Theory]
    [InlineData("attention_bias")]
    [InlineData("mlp_bias")]
    public void MistralBiasField_IsIgnoredWithAWarning(string field)
    {
        var c = LlamaConfig.FromJson(With(TinyMistralJson(), field, true));
        Assert.False(c.AttentionBias || c.MlpBias);
        Assert.Contains($"'{field}'", Assert.Single(c.Warnings));
    }

    [Fact]
    public void Load_WarningsNameTheFile()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"lc-config-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), With(TinyJson(), "some_new_switch", 1).ToJsonString());
            Assert.StartsWith(Path.Combine(folder, "config.json"), Assert.Single(LlamaConfig.Load(folder).Warnings));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ---- what changes the math: refused, naming the field ----

    [Theory]
    [InlineData("Qwen2ForCausalLM", "Qwen2")]
    [InlineData("GPT2LMHeadModel", "GPT2LMHeadModel")]
    public void UnknownArchitecture_IsRefusedNamingIt(string architecture, string mentioned)
    {
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(With(TinyJson(), "architectures", new JsonArray(architecture))));
        Assert.Contains(mentioned, ex.Message, StringComparison.Ordinal);
        Assert.Contains("LlamaForCausalLM", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("hidden_act", "gelu", "hidden_act 'gelu'")]
    [InlineData("sliding_window", 4096, "sliding_window 4096")]
    [InlineData("quantization_config", "x", "quantization_config")]
    public void MathChangingField_IsRefusedNamingIt(string field, object value, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(With(TinyJson(), field, JsonValue.Create(value))));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MistralWithoutSlidingWindowKey_GetsHfsDefaultAndIsRefused()
    {
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(Without(TinyMistralJson(), "sliding_window")));
        Assert.Contains("sliding_window 4096 (MistralConfig's default when the key is absent) is not supported", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MistralWithNullSlidingWindow_IsAccepted()
        => Assert.Equal(LlamaArchitectures.Mistral, LlamaConfig.FromJson(TinyMistralJson()).Architecture);

    [Fact]
    public void HeadsNotMultipleOfKvHeads_IsRefusedNamingBoth()
    {
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(With(TinyJson(), "num_key_value_heads", 3)));
        Assert.Contains("NumKeyValueHeads (3)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingRequiredField_IsRefusedNamingIt()
    {
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(Without(TinyJson(), "intermediate_size")));
        Assert.Contains("intermediate_size", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a string for an integer", "hidden_size", "\"16\"", "hidden_size must be an integer; got \"16\"")]
    [InlineData("a fraction for an integer", "num_hidden_layers", "2.5", "num_hidden_layers must be an integer; got 2.5")]
    [InlineData("a number for a boolean", "tie_word_embeddings", "1", "tie_word_embeddings must be true or false; got 1")]
    public void FieldOfTheWrongKind_IsRefusedNamingFileKeyAndValue(string why, string field, string json, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(With(TinyJson(), field, JsonNode.Parse(json))));
        Assert.True(ex.Message.StartsWith("config.json: ") && ex.Message.Contains(expected), $"{why}: {ex.Message}");
    }

    [Fact]
    public void PadTokenIdOutsideTheVocabulary_IsRefused()
    {
        var ex = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(With(TinyJson(), "pad_token_id", 32)));
        Assert.Contains("PadTokenId must be in [-32, 32)", ex.Message, StringComparison.Ordinal);
    }

    // ---- writing ----

    [Fact]
    public void MistralToJson_WritesSlidingWindowNull()
    {
        // MistralConfig reads an absent sliding_window as 4096: the written file must say null.
        var json = (Code() with { Architecture = LlamaArchitectures.Mistral }).ToJson();
        Assert.True(json.ContainsKey("sliding_window") && json["sliding_window"] is null);
    }

    [Fact]
    public void ToJsonString_ReadsBackToTheSameConfig()
    {
        var c = Code() with { PadTokenId = 0, Rope = RopeParameters.Linear(4) };
        Assert.Equal(c, LlamaConfig.FromJson(JsonNode.Parse(c.ToJsonString())!.AsObject()) with { Source = null });
    }

    // ---- built in code: validated on construction ----

    private static readonly Dictionary<string, (Func<LlamaConfig> Build, string Field)> Invalid = new()
    {
        ["vocabulary 0"] = (() => Code() with { VocabSize = 0 }, "VocabSize"),
        ["hidden size -1"] = (() => Code() with { HiddenSize = -1 }, "HiddenSize"),
        ["rms norm eps 0"] = (() => Code() with { RmsNormEps = 0 }, "RmsNormEps"),
        ["attention dropout 1"] = (() => Code() with { AttentionDropout = 1 }, "AttentionDropout"),
        ["unsupported architecture"] = (() => Code() with { Architecture = "GPT2LMHeadModel" }, "Architecture"),
        ["kv heads set before heads"] = (() => new LlamaConfig { NumKeyValueHeads = 3, NumAttentionHeads = 4, VocabSize = 32, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, HeadDim = 4, MaxPositionEmbeddings = 64 }, "NumKeyValueHeads"),
        ["kv heads changed by with"] = (() => Code() with { NumKeyValueHeads = 3 }, "NumKeyValueHeads"),
        ["odd head dim for the rope"] = (() => Code() with { HeadDim = 5 }, "HeadDim"),
        ["rope lists that do not fit the head dim"] = (() => Code() with { Rope = RopeParameters.LongRope([1, 1, 1], [1, 1, 1], 32, 2) }, "Rope.ShortFactor"),
        ["pad token past the vocabulary"] = (() => Code() with { PadTokenId = 32 }, "PadTokenId"),
        ["vocabulary shrunk below the pad token"] = (() => Code() with { PadTokenId = 20 } with { VocabSize = 16 }, "PadTokenId"),
    };

    public static TheoryData<string> InvalidCases() => new(Invalid.Keys);

    [Theory]
    [MemberData(nameof(InvalidCases))]
    public void InvalidConfig_ThrowsWhereItIsBuilt(string name)
    {
        var (build, field) = Invalid[name];
        Assert.Equal(field, Assert.ThrowsAny<ArgumentException>(build).ParamName);
    }

    [Fact]
    public void NegativePadTokenId_CountsFromTheEndOfTheVocabulary()
        => Assert.Equal(31, (Code() with { PadTokenId = -1 }).PaddingIndex);

    [Fact]
    public void Source_IsACopy()
    {
        var fields = new Dictionary<string, JsonElement> { ["bos_token_id"] = JsonDocument.Parse("1").RootElement };
        var c = Code() with { Source = fields };
        fields["bos_token_id"] = JsonDocument.Parse("7").RootElement;
        Assert.Equal(1, c.Source!["bos_token_id"].GetInt32());
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
