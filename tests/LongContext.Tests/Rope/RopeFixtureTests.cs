using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Rope;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Rope;

/// <summary>
/// Every entry of <c>rope/rope_manifest.json</c> against HF transformers' numbers: inverse frequencies (relative
/// 1e-6), attention scaling, cos/sin per length (abs 1e-4), frequencies after each call, q/k embeddings (abs 5e-4).
/// </summary>
[Trait(Category.Name, Category.Rope)]
[Trait(Category.Name, Category.Reference)]
public sealed class RopeFixtureTests
{
    private const double FrequencyTolerance = 1e-6, TableTolerance = 1e-4, EmbedTolerance = 5e-4;

    public static TheoryData<string> Entries()
    {
        var data = new TheoryData<string>();
        foreach (string name in EntryNames()) data.Add(name);
        return data;
    }

    private static IEnumerable<string> EntryNames()
    {
        string manifest = Path.Combine(Fixtures.Folder("rope"), "rope_manifest.json");
        if (!File.Exists(manifest)) return [];
        return JsonNode.Parse(File.ReadAllText(manifest))!.AsObject().Select(kv => kv.Key).ToList();
    }

    [Fact]
    public void Manifest_IsPresentAndEveryEntryHasItsFile()
    {
        var entries = EntryNames().ToList();
        Assert.NotEmpty(entries);
        foreach (string name in entries)
            Assert.True(File.Exists(FilePath(name)), $"missing {FilePath(name)}");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void Builder_MatchesInitialFrequenciesAndAttentionScaling(string name)
    {
        var (p, headDim, maxPos, scaling) = Entry(name);
        using var scope = NewDisposeScope();
        var expected = SafetensorsFile.Load(FilePath(name), ["inv_freq_init"])["inv_freq_init"];
        RopeFrequencies built = RopeFrequencyBuilder.Build(p, headDim, maxPos);
        Assert.Equal(ScalarType.Float32, built.InverseFrequencies.dtype);
        TensorAssert.RelativeClose(built.InverseFrequencies, expected, FrequencyTolerance, $"{name} inv_freq_init");
        Assert.True(Math.Abs(built.AttentionScaling - scaling) <= 1e-12 * scaling, $"{name}: attention scaling {built.AttentionScaling} vs {scaling}");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void Module_MatchesCosSinAndFrequenciesAtEveryLengthInOrder(string name)
    {
        var (p, headDim, maxPos, scaling) = Entry(name);
        using var scope = NewDisposeScope();
        var data = SafetensorsFile.Load(FilePath(name));
        long[] lengths = data.Keys.Where(k => k.StartsWith("cos_", StringComparison.Ordinal))
            .Select(k => long.Parse(k["cos_".Length..])).Order().ToArray();
        Assert.NotEmpty(lengths);
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(headDim, maxPos, p));
        TensorAssert.RelativeClose(rope.InverseFrequencies, data["inv_freq_init"], FrequencyTolerance, $"{name} module inv_freq_init");
        foreach (long length in lengths) CheckLength(name, rope, data, length);
        Assert.True(Math.Abs(rope.AttentionScaling - scaling) <= 1e-12 * scaling, $"{name}: attention scaling {rope.AttentionScaling}");

        // Back to the shortest length: stateless types, longrope (short factors again) and dynamic below its window
        // (HF resets) reproduce the first table; dynamic at or past the window keeps the grown base, as HF does.
        if (p.Type != RopeType.Dynamic || lengths[0] < maxPos)
        {
            var (cos, sin) = rope.forward(arange(lengths[0], dtype: int64).unsqueeze(0));
            TensorAssert.Close(cos[0], data[$"cos_{lengths[0]}"], TableTolerance, $"{name} cos_{lengths[0]} again");
            TensorAssert.Close(sin[0], data[$"sin_{lengths[0]}"], TableTolerance, $"{name} sin_{lengths[0]} again");
        }
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void Apply_MatchesQAndKEmbeddings(string name)
    {
        var (p, headDim, maxPos, _) = Entry(name);
        using var scope = NewDisposeScope();
        var data = SafetensorsFile.Load(FilePath(name));
        if (!data.ContainsKey("q_embed")) return; // optional in the schema: another fixture set may omit q/k
        Tensor q = data["q"], k = data["k"];
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(headDim, maxPos, p));
        Tensor ids = arange(q.shape[2], dtype: int64).unsqueeze(0);
        var (qe, ke) = rope.Apply(q, k, ids);
        TensorAssert.Close(qe, data["q_embed"], EmbedTolerance, $"{name} q_embed");
        TensorAssert.Close(ke, data["k_embed"], EmbedTolerance, $"{name} k_embed");
        TensorAssert.Close(rope.Apply(q, ids), data["q_embed"], EmbedTolerance, $"{name} q_embed (one tensor)");
    }

    private static void CheckLength(string name, RotaryEmbedding rope, Dictionary<string, Tensor> data, long length)
    {
        var (cos, sin) = rope.forward(arange(length, dtype: int64).unsqueeze(0));
        Assert.Equal(ScalarType.Float32, cos.dtype);
        Assert.Equal(new long[] { 1, length, data[$"cos_{length}"].shape[1] }, cos.shape);
        TensorAssert.Close(cos[0], data[$"cos_{length}"], TableTolerance, $"{name} cos_{length}");
        TensorAssert.Close(sin[0], data[$"sin_{length}"], TableTolerance, $"{name} sin_{length}");
        if (data.TryGetValue($"inv_freq_after_{length}", out Tensor? after))
            TensorAssert.RelativeClose(rope.InverseFrequencies, after, FrequencyTolerance, $"{name} inv_freq_after_{length}");
    }

    private static string FilePath(string name) => Path.Combine(Fixtures.Folder("rope"), $"rope_{name}.safetensors");

    /// <summary>Reads an entry through <see cref="HfRopeConfig.Read(JsonObject, int, int)"/>, as a config.json with a v5 rope_parameters object.</summary>
    private static (RopeParameters P, int HeadDim, int MaxPos, double Scaling) Entry(string name)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Folder("rope"), "rope_manifest.json")))!.AsObject();
        var entry = manifest[name]!.AsObject();
        var rope = entry["config"]!.DeepClone().AsObject();
        int headDim = rope["head_dim"]!.GetValue<int>(), maxPos = rope["max_position_embeddings"]!.GetValue<int>();
        rope.Remove("head_dim");
        rope.Remove("max_position_embeddings");
        var config = new JsonObject { ["rope_parameters"] = rope };
        return (HfRopeConfig.Read(config, headDim, maxPos).Parameters, headDim, maxPos, entry["attention_scaling"]!.GetValue<double>());
    }
}
