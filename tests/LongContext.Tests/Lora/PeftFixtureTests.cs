using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Lora;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

/// <summary>
/// Adapters exactly as peft saved them (every <c>models/*/adapter_config.json</c> of the fixture set): each key maps
/// to a tensor of a stand-in tree built from the base checkpoint's tensor names and shapes, loads verbatim, and comes
/// back from a save as peft wrote it. Whatever a set holds (LoRA on linears or embeddings, base layers, modules to
/// save, biases) is checked; nothing beyond it is required.
/// </summary>
[Trait(Category.Name, Category.Lora)]
[Trait(Category.Name, Category.Reference)]
public sealed class PeftFixtureTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("lora-fixture-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    public static TheoryData<string> Adapters()
    {
        var data = new TheoryData<string>();
        string root = Fixtures.Folder("models");
        if (!Directory.Exists(root)) return data;
        foreach (string dir in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
            if (File.Exists(Path.Combine(dir, PeftAdapterConfigJson.FileName))) data.Add(Path.GetFileName(dir));
        return data;
    }

    private static string Folder(string adapter) => Path.Combine(Fixtures.Folder("models"), adapter);

    private static PeftAdapterConfigJson Config(string adapter) => PeftAdapterConfigJson.Read(Path.Combine(Folder(adapter), PeftAdapterConfigJson.FileName));

    private static IReadOnlyDictionary<string, long[]> BaseShapes(string adapter)
    {
        string path = Path.Combine(Fixtures.Folder("models"), Config(adapter).BaseModelNameOrPath!, "model.safetensors");
        Assert.True(File.Exists(path), $"base checkpoint '{path}' named by base_model_name_or_path is missing");
        return SafetensorsFile.ReadShapes(path);
    }

    private static string Rest(string key)
    {
        Assert.StartsWith(PeftAdapter.KeyPrefix, key);
        return key[PeftAdapter.KeyPrefix.Length..];
    }

    /// <summary>The live state-dict key of a saved key for adapter <c>default</c> (peft's saved keys drop the name).</summary>
    private static string LiveKey(string rest)
    {
        foreach (string ab in new[] { "lora_A", "lora_B" })
            if (rest.EndsWith($".{ab}.weight", StringComparison.Ordinal)) return rest[..^".weight".Length] + ".default.weight";
        foreach (string ab in new[] { "lora_embedding_A", "lora_embedding_B" })
            if (rest.EndsWith("." + ab, StringComparison.Ordinal)) return rest + ".default";
        return rest;
    }

    /// <summary>The shape a saved key must have, from the base checkpoint's shapes and r.</summary>
    private static long[] ExpectedShape(string rest, IReadOnlyDictionary<string, long[]> baseShapes, int r)
    {
        long[] Weight(string module)
        {
            Assert.True(baseShapes.TryGetValue(module + ".weight", out var w), $"'{rest}': no '{module}.weight' in the base checkpoint");
            return w!;
        }
        string Module(string suffix) => rest[..^suffix.Length];
        if (rest.EndsWith(".lora_A.weight", StringComparison.Ordinal)) return [r, Weight(Module(".lora_A.weight"))[1]];
        if (rest.EndsWith(".lora_B.weight", StringComparison.Ordinal)) return [Weight(Module(".lora_B.weight"))[0], r];
        if (rest.EndsWith(".lora_embedding_A", StringComparison.Ordinal)) return [r, Weight(Module(".lora_embedding_A"))[0]];
        if (rest.EndsWith(".lora_embedding_B", StringComparison.Ordinal)) return [Weight(Module(".lora_embedding_B"))[1], r];
        string plain = rest.Replace(".base_layer.", ".", StringComparison.Ordinal);   // base layers, modules to save, biases
        Assert.True(baseShapes.TryGetValue(plain, out var shape), $"'{rest}' matches no tensor '{plain}' of the base checkpoint");
        return shape!;
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void EveryKey_HasTheShapeItsBaseTensorImplies(string adapter)
    {
        var baseShapes = BaseShapes(adapter);
        int r = Config(adapter).R;
        foreach (var (key, shape) in SafetensorsFile.ReadShapes(Path.Combine(Folder(adapter), PeftAdapter.WeightsFileName)))
            Assert.True(ExpectedShape(Rest(key), baseShapes, r).SequenceEqual(shape), $"{key}: shape [{string.Join(", ", shape)}]");
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void EveryKey_LoadsVerbatimIntoTheModel(string adapter)
    {
        using var tree = StandInNode.FromCheckpoint(BaseShapes(adapter));
        PeftAdapter.Load(tree, Folder(adapter));
        var state = tree.state_dict();
        foreach (var (key, t) in SafetensorsFile.Load(Path.Combine(Folder(adapter), PeftAdapter.WeightsFileName)))
            TensorAssert.Equal(state[LiveKey(Rest(key))], t.to(state[LiveKey(Rest(key))].dtype), key);
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void TheTrainableParameters_AreTheAdaptersTensorsButBaseLayers(string adapter)
    {
        using var tree = StandInNode.FromCheckpoint(BaseShapes(adapter));
        var report = PeftAdapter.Load(tree, Folder(adapter));
        long expected = SafetensorsFile.ReadShapes(Path.Combine(Folder(adapter), PeftAdapter.WeightsFileName))
            .Where(kv => !kv.Key.Contains(".base_layer.", StringComparison.Ordinal))
            .Sum(kv => kv.Value.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(expected, report.Parameters.Trainable);
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void ReSaving_WritesTheKeysPeftWrote(string adapter)
    {
        using var tree = StandInNode.FromCheckpoint(BaseShapes(adapter));
        PeftAdapter.Load(tree, Folder(adapter));
        PeftAdapter.Save(tree, _out);
        var original = SafetensorsFile.ReadShapes(Path.Combine(Folder(adapter), PeftAdapter.WeightsFileName)).Keys.Order(StringComparer.Ordinal);
        var written = SafetensorsFile.ReadShapes(Path.Combine(_out, PeftAdapter.WeightsFileName)).Keys.Order(StringComparer.Ordinal);
        Assert.Equal(original, written);
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void ReSaving_WritesTheMathFieldsPeftWrote(string adapter)
    {
        using var tree = StandInNode.FromCheckpoint(BaseShapes(adapter));
        PeftAdapter.Load(tree, Folder(adapter));
        PeftAdapter.Save(tree, _out, Config(adapter).BaseModelNameOrPath);
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder(adapter), PeftAdapterConfigJson.FileName)))!.AsObject();
        var written = JsonNode.Parse(File.ReadAllText(Path.Combine(_out, PeftAdapterConfigJson.FileName)))!.AsObject();
        foreach (string key in new[] { "r", "lora_alpha", "lora_dropout", "use_rslora", "bias", "init_lora_weights", "base_model_name_or_path" })
            Assert.True(JsonNode.DeepEquals(original[key], written[key]), $"{key}: peft wrote {original[key]?.ToJsonString()}, re-saved as {written[key]?.ToJsonString()}");
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void AFreshAdapterConfig_HasEveryKeyPeftWrote(string adapter)
    {
        using var model = new TinyModel(vocab: 20, dim: 8, nLayers: 2);
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        PeftAdapter.Save(model, _out);
        var peftKeys = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder(adapter), PeftAdapterConfigJson.FileName)))!.AsObject().Select(kv => kv.Key);
        var written = JsonNode.Parse(File.ReadAllText(Path.Combine(_out, PeftAdapterConfigJson.FileName)))!.AsObject().Select(kv => kv.Key);
        Assert.Empty(peftKeys.Except(written).Except(["peft_version"]));
    }
}
