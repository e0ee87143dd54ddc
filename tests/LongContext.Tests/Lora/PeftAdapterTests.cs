using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Lora;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

[Trait(Category.Name, Category.Lora)]
public sealed class PeftAdapterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lora-peft-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static TinyModel Trained(LoraOptions options)
    {
        manual_seed(21);
        var model = new TinyModel(vocab: 20, dim: 8, nLayers: 2);
        LoraInjector.Inject(model, options);
        using (no_grad())
        {
            foreach (var (_, l) in LoraInjector.Layers(model)) { l.LoraA("default").normal_(); l.LoraB("default").normal_(); }
            foreach (var (name, p) in model.named_parameters()) if (p.requires_grad && !name.Contains(".lora_")) p.add_(1);
        }
        return model;
    }

    /// <summary>Saves <paramref name="model"/>'s adapter into the test folder with the tensor <paramref name="key"/> taken out of its weights file.</summary>
    private void SaveWithout(TinyModel model, string key)
    {
        PeftAdapter.Save(model, _dir);
        string weights = Path.Combine(_dir, PeftAdapter.WeightsFileName);
        var tensors = SafetensorsFile.Load(weights);
        Assert.True(tensors.Remove(key), $"the saved adapter holds {key}");
        SafetensorsFile.Save(weights, tensors);
    }

    /// <summary>
    /// A fresh model (other random weights) given the saved model's base weights, so that comparisons after loading
    /// the adapter are fair. Copied, not redrawn from the same seed: test classes run in parallel and draw from the one
    /// global generator, so a reseeded model is not reliably the same model.
    /// </summary>
    private static TinyModel WithBaseOf(TinyModel saved)
    {
        manual_seed(99);
        var fresh = new TinyModel(vocab: 20, dim: 8, nLayers: 2);
        using var noGrad = no_grad();
        var src = saved.state_dict();
        foreach (var (name, p) in fresh.named_parameters())
        {
            string savedKey = src.Keys.Single(k => k.Replace(".base_layer", "", StringComparison.Ordinal) == name);
            if (!savedKey.Contains(".lora_")) p.copy_(src[savedKey]);
        }
        return fresh;
    }

    private IReadOnlyDictionary<string, long[]> SavedShapes() => SafetensorsFile.ReadShapes(Path.Combine(_dir, PeftAdapter.WeightsFileName));

    private JsonObject SavedConfig() => JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, PeftAdapterConfigJson.FileName)))!.AsObject();

    private void EditSavedConfig(string key, JsonNode? value)
    {
        var json = SavedConfig();
        json[key] = value;
        File.WriteAllText(Path.Combine(_dir, PeftAdapterConfigJson.FileName), json.ToJsonString());
    }

    [Fact]
    public void SaveThenLoad_IntoAFreshModel_RestoresEveryTensor()
    {
        var options = new LoraOptions { Rank = 3, Alpha = 12, TargetModules = ["q_proj", "v_proj", "o_proj"], ModulesToSave = ["embed", "norm"], Bias = LoraBias.LoraOnly };
        using var saved = Trained(options);
        PeftAdapter.Save(saved, _dir, "tiny");
        using var fresh = WithBaseOf(saved);
        using (no_grad()) foreach (var (name, p) in fresh.named_parameters()) if (name.Contains("norm") || name.StartsWith("embed") || name.EndsWith("q_proj.bias")) p.zero_();
        PeftAdapter.Load(fresh, _dir);
        var a = saved.state_dict();
        var b = fresh.state_dict();
        Assert.Equal(a.Keys.OrderBy(k => k), b.Keys.OrderBy(k => k));
        foreach (var key in a.Keys) TensorAssert.Equal(b[key], a[key], key);
    }

    /// <summary>
    /// use_rslora read from adapter_config.json sets the scaling of every loaded layer: alpha / sqrt(r) when true,
    /// alpha / r when false (r 4, alpha 4: 2 and 1, so the flag cannot go unnoticed). The peft fixture has
    /// use_rslora false, and the other round trips compare tensors only. With the flag kept, the loaded model's
    /// logits equal the saved model's (same base weights, same A and B).
    /// </summary>
    [Theory]
    [InlineData(true, 2.0)]
    [InlineData(false, 1.0)]
    public void UseRsLora_FromTheConfig_SetsTheScalingOfEveryLoadedLayer(bool rsLora, double scaling)
    {
        using var saved = Trained(new LoraOptions { Rank = 4, Alpha = 4, UseRsLora = true });
        PeftAdapter.Save(saved, _dir);
        if (!rsLora) EditSavedConfig("use_rslora", false);
        using var fresh = WithBaseOf(saved);
        PeftAdapter.Load(fresh, _dir);
        var layers = LoraInjector.Layers(fresh).ToList();
        Assert.NotEmpty(layers);
        Assert.All(layers, l => Assert.Equal(scaling, l.Layer.GetOptions("default").Scaling, 15));
        using var ids = tensor(new long[] { 1, 5, 7, 19, 0, 3 }).reshape(2, 3);
        using var noGrad = no_grad();
        double diff = TensorAssert.MaxAbsDiff(fresh.call(ids), saved.call(ids));
        Assert.True(rsLora ? diff <= 1e-6 : diff > 1e-3, $"use_rslora {rsLora}: logits differ from the saved model's by {diff:E3}");
    }

    [Fact]
    public void WrittenWeights_HoldPeftsKeysAndShapes()
    {
        using var model = Trained(new LoraOptions { Rank = 2, Alpha = 4, ModulesToSave = ["embed_tokens"] });
        PeftAdapter.Save(model, _dir);
        var shapes = SavedShapes();
        var expected = new SortedSet<string>(StringComparer.Ordinal) { "base_model.model.embed_tokens.weight" };
        foreach (int i in new[] { 0, 1 })
            foreach (string m in new[] { "q_proj", "v_proj" })
                foreach (string ab in new[] { "lora_A", "lora_B" })
                    expected.Add($"base_model.model.layers.{i}.self_attn.{m}.{ab}.weight");
        Assert.Equal(expected, new SortedSet<string>(shapes.Keys, StringComparer.Ordinal));
        Assert.Equal(new long[] { 2, 8 }, shapes["base_model.model.layers.0.self_attn.q_proj.lora_A.weight"]);
        Assert.Equal(new long[] { 8, 2 }, shapes["base_model.model.layers.0.self_attn.q_proj.lora_B.weight"]);
    }

    [Fact]
    public void WrittenConfig_HoldsTheOptionsUnderPeftsNames()
    {
        using var model = Trained(new LoraOptions { Rank = 2, Alpha = 4, Dropout = 0.05, UseRsLora = true, Init = LoraInit.Gaussian, ModulesToSave = ["embed_tokens"] });
        PeftAdapter.Save(model, _dir, "meta-llama/Llama-2-7b-hf");
        var json = SavedConfig();
        Assert.Equal("LORA", (string?)json["peft_type"]);
        Assert.Equal(2, (int)json["r"]!);
        Assert.Equal(4.0, (double)json["lora_alpha"]!);
        Assert.Equal(0.05, (double)json["lora_dropout"]!);
        Assert.True((bool)json["use_rslora"]!);
        Assert.Equal("none", (string?)json["bias"]);
        Assert.Equal("gaussian", (string?)json["init_lora_weights"]);
        Assert.Equal("meta-llama/Llama-2-7b-hf", (string?)json["base_model_name_or_path"]);
        Assert.Equal(["q_proj", "v_proj"], json["target_modules"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["embed_tokens"], json["modules_to_save"]!.AsArray().Select(n => (string)n!));
        Assert.False((bool)json["use_dora"]!);
        Assert.Empty(json["rank_pattern"]!.AsObject());
    }

    [Fact]
    public void WrittenConfig_HasSortedKeys()
    {
        using var model = Trained(new LoraOptions { Rank = 2 });
        PeftAdapter.Save(model, _dir);
        var json = SavedConfig();
        Assert.Equal(json.Select(kv => kv.Key).OrderBy(k => k, StringComparer.Ordinal), json.Select(kv => kv.Key));
    }

    [Theory]
    [InlineData("true: peft's default reset", "true")]
    [InlineData("gaussian", "\"gaussian\"")]
    [InlineData("false: random A and B", "false")]
    public void InitLoraWeights_IsWrittenBackAsLoaded(string init, string value)
    {
        using var model = Trained(new LoraOptions { Rank = 2 });
        PeftAdapter.Save(model, _dir);
        EditSavedConfig("init_lora_weights", JsonNode.Parse(value));
        using var fresh = new TinyModel(20, 8, 2);
        PeftAdapter.Load(fresh, _dir);
        PeftAdapter.Save(fresh, _dir);
        Assert.True(SavedConfig()["init_lora_weights"]!.ToJsonString() == value, $"{init}: re-saved as {SavedConfig()["init_lora_weights"]!.ToJsonString()}");
    }

    [Theory]
    [InlineData("embed_tokens", "base_model.model.embed_tokens.base_layer.weight")]
    [InlineData("lm_head", "base_model.model.lm_head.base_layer.weight")]
    public void AnEmbeddingLayerTarget_SavesItsBaseLayer_AsPeftDoes(string target, string key)
    {
        using var model = Trained(new LoraOptions { Rank = 2, TargetModules = [target, "q_proj"] });
        PeftAdapter.Save(model, _dir);
        Assert.Contains(key, SavedShapes().Keys);
    }

    [Fact]
    public void OtherTargets_SaveNoBaseLayer()
    {
        using var model = Trained(new LoraOptions { Rank = 2, TargetModules = ["q_proj", "v_proj", "o_proj"] });
        PeftAdapter.Save(model, _dir);
        Assert.DoesNotContain(SavedShapes().Keys, k => k.Contains(".base_layer.", StringComparison.Ordinal));
    }

    [Fact]
    public void BaseLayerTensors_RestoreTheWrappedBaseOnLoad()
    {
        using var model = Trained(new LoraOptions { Rank = 2, TargetModules = ["embed_tokens", "q_proj"] });
        PeftAdapter.Save(model, _dir);
        manual_seed(123);
        using var fresh = new TinyModel(20, 8, 2);
        PeftAdapter.Load(fresh, _dir);
        const string key = "embed_tokens.base_layer.weight";
        TensorAssert.Equal(fresh.state_dict()[key], model.state_dict()[key], key);
    }

    [Fact]
    public void AnAdapterWithoutBaseLayerTensors_StillLoads()
    {
        using var model = Trained(new LoraOptions { Rank = 2, TargetModules = ["embed_tokens", "q_proj"] });
        SaveWithout(model, "base_model.model.embed_tokens.base_layer.weight");
        using var fresh = new TinyModel(20, 8, 2);
        var report = PeftAdapter.Load(fresh, _dir);
        Assert.Equal(3, report.WrappedModules.Count);
    }

    [Fact]
    public void ModulesToSave_AreSavedFromAnyRootOfTheModel()
    {
        using var inner = Trained(new LoraOptions { Rank = 2, ModulesToSave = ["norm"] });
        using var outer = new OuterModel(inner);
        PeftAdapter.Save(outer, _dir);
        Assert.Contains("base_model.model.inner.norm.weight", SavedShapes().Keys);
    }

    [Theory]
    [InlineData("use_dora", "true", "use_dora")]
    [InlineData("rank_pattern", "{\"q_proj\": 4}", "rank_pattern")]
    [InlineData("alpha_pattern", "{\"q_proj\": 4}", "alpha_pattern")]
    [InlineData("layers_to_transform", "[0]", "layers_to_transform")]
    [InlineData("init_lora_weights", "\"pissa\"", "pissa")]
    [InlineData("some_future_option", "{\"x\": 1}", "some_future_option")]
    public void Configs_ThatChangeTheMath_AreRefusedByName(string key, string value, string named)
    {
        using var model = Trained(new LoraOptions { Rank = 2 });
        PeftAdapter.Save(model, _dir);
        EditSavedConfig(key, JsonNode.Parse(value));
        using var fresh = new TinyModel(20, 8, 2);
        var e = Assert.Throws<NotSupportedException>(() => PeftAdapter.Load(fresh, _dir));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void ShapeMismatch_NamesTheKeyAndBothShapes()
    {
        using var model = Trained(new LoraOptions { Rank = 2 });
        PeftAdapter.Save(model, _dir);
        using var wider = new TinyModel(vocab: 20, dim: 6, nLayers: 2);
        var e = Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(wider, _dir));
        Assert.Contains("base_model.model.layers.0.self_attn.q_proj.lora_A.weight", e.Message);
        Assert.Contains("[2, 8]", e.Message);
        Assert.Contains("[2, 6]", e.Message);
    }

    /// <summary>
    /// An adapter of another model is refused after the injection found its shapes unfit: the model is left as it was
    /// given (no LoRA layer, every parameter trainable as before, the same state-dict keys and outputs), so another
    /// adapter can be loaded into it.
    /// </summary>
    [Fact]
    public void ARefusedAdapter_LeavesTheModelAsItWasGiven()
    {
        using var model = Trained(new LoraOptions { Rank = 2 });
        PeftAdapter.Save(model, _dir);
        using var wider = new TinyModel(vocab: 20, dim: 6, nLayers: 2);
        var keys = wider.state_dict().Keys.ToList();
        using var ids = tensor(new long[,] { { 1, 2, 3 } });
        using var before = wider.call(ids).detach().clone();

        Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(wider, _dir));
        // The discarded wrappers are garbage now; finalizing them must not release the base layers the model uses again.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.Empty(LoraInjector.Layers(wider));
        Assert.Equal(keys, wider.state_dict().Keys);
        Assert.All(wider.named_parameters(), p => Assert.True(p.parameter.requires_grad, p.name));
        TensorAssert.Close(wider.call(ids), before, 0, "outputs as before the refused load");
        PeftAdapter.Save(Trained(new LoraOptions { Rank = 2, TargetModules = ["o_proj"] }), Path.Combine(_dir, "o"));
        Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(wider, Path.Combine(_dir, "o")));   // again: not 'already present'
    }

    /// <summary>A refused second adapter leaves the layers holding the first one only, trained as before.</summary>
    [Fact]
    public void ARefusedSecondAdapter_IsTakenOutOfTheLayersThatHoldTheFirst()
    {
        using var model = Trained(new LoraOptions { Rank = 2 });
        SaveWithout(model, "base_model.model.layers.1.self_attn.v_proj.lora_B.weight");
        var keys = model.state_dict().Keys.ToList();
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();

        Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(model, _dir, adapterName: "second"));

        Assert.All(LoraInjector.Layers(model), l => Assert.Equal(["default"], l.Layer.AdapterNames));
        Assert.Equal(keys, model.state_dict().Keys);
        Assert.Equal(trainable, model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name));
    }

    [Fact]
    public void MissingKeys_AreListed()
    {
        using var model = Trained(new LoraOptions { Rank = 2 });
        SaveWithout(model, "base_model.model.layers.1.self_attn.v_proj.lora_B.weight");
        using var fresh = new TinyModel(20, 8, 2);
        var e = Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(fresh, _dir));
        Assert.Contains("layers.1.self_attn.v_proj.lora_B.weight", e.Message);
    }

    [Fact]
    public void SavingAnAdapterNoLayerHolds_IsAnError()
    {
        using var model = Trained(new LoraOptions { Rank = 2 });
        var e = Assert.Throws<ArgumentException>(() => PeftAdapter.Save(model, _dir, adapterName: "other"));
        Assert.Contains("'other'", e.Message);
    }
}
