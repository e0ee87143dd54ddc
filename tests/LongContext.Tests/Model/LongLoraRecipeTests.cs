using System.Text.Json.Nodes;
using LongContext.Attention;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Rope;
using LongContext.Tests.Support;
using LongContext.Training;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class LongLoraRecipeTests : IDisposable
{
    private const int Vocab = 16;
    private readonly string root = Path.Combine(Path.GetTempPath(), $"lc-longlora-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    private static LlamaConfig BaseConfig => LlamaTrainingTests.Tiny(vocab: Vocab) with { MaxPositionEmbeddings = 16 };

    private string SaveBase()
    {
        string folder = Path.Combine(root, "base");
        if (Directory.Exists(folder)) return folder;
        random.manual_seed(8);
        using var model = new LlamaForCausalLM(BaseConfig);
        LlamaCheckpoint.Save(model, folder);
        return folder;
    }

    /// <summary>The recipe at 40 tokens over a 16-token base: PI factor ceil(40 / 16) = 3, S2 with G = N/4.</summary>
    private static readonly LongLoraOptions At40 = new() { TargetContextLength = 40 };

    /// <summary>A few seeded AdamW steps at 32 tokens (S2 with G = 8, checkpointed layers), then evaluation mode.</summary>
    private static void Train(LlamaForCausalLM model, int steps = 5)
    {
        using var optimizer = optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 1e-2);
        var generator = new Generator(5);
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            Tensor ids = randint(0, Vocab, [2, 32], dtype: ScalarType.Int64, generator: generator);
            optimizer.zero_grad();
            model.Loss(ids, ids).backward();
            optimizer.step();
        }
        model.eval();
    }

    private static Tensor Probe(int length = 40) => randint(0, Vocab, [1, length], dtype: ScalarType.Int64, generator: new Generator(3));

    private static Tensor Logits(LlamaForCausalLM model, Tensor ids)
    {
        using (no_grad()) return model.forward(ids);
    }

    // ---- what Prepare does ----

    [Fact]
    public void Prepare_SetsLinearPi_FactorCeilOfTargetOverOriginal()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        Assert.Equal(RopeType.Linear, model.Config.Rope.Type);
        Assert.Equal(3.0, model.Config.Rope.Factor);
    }

    [Fact]
    public void Prepare_KeepsMaxPositionEmbeddings_AsLongLoraDoes()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        Assert.Equal(16, model.Config.MaxPositionEmbeddings);
    }

    [Fact]
    public void Prepare_WithoutPositionInterpolation_KeepsTheRopeAsLoaded()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40 with { PositionInterpolation = false });
        Assert.Equal(BaseConfig.Rope, model.Config.Rope);
    }

    [Fact]
    public void Prepare_WithoutPositionInterpolation_DeclaresTheTargetContext_TheRopeFrequenciesUnchanged()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        Assert.Equal(16, LongLora.ContextLength(model.Config));
        LongLora.Prepare(model, At40 with { PositionInterpolation = false });
        Assert.Equal(40, model.Config.MaxPositionEmbeddings);       // rows of 40 tokens are accepted (extrapolation)
        Assert.Equal(40, LongLora.ContextLength(model.Config));
        Assert.Equal(RopeType.Default, model.Config.Rope.Type);
        // Unscaled rope: position p of head pair i has angle p * theta^(-2i/d), whatever the declared context.
        model.eval();
        using var reference = LlamaCheckpoint.Load(SaveBase());
        reference.eval();
        Tensor probe = Probe(16);
        TensorAssert.Close(Logits(model, probe), Logits(reference, probe), 1e-6, "the first 16 positions compute as before");
    }

    [Fact]
    public void ApplyExtrapolation_PastTheContextOfAScaledRope_IsRefused_AndWithinItChangesNothing()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.ApplyPositionInterpolation(model, 32);                                       // linear factor 2: context 32
        LlamaConfig before = model.Config;
        var e = Assert.Throws<NotSupportedException>(() => LongLora.Prepare(model, At40 with { PositionInterpolation = false }));
        Assert.Contains("context of 32", e.Message);
        Assert.Contains("Linear", e.Message);
        Assert.Equal(before, model.Config);
        Assert.DoesNotContain(model.modules(), m => m is LoraLayer);
        Assert.Equal(32, LongLora.ApplyExtrapolation(model, 24));
        Assert.Equal(before, model.Config);
    }

    [Fact]
    public void Prepare_WrapsQKVAndOInEveryLayer()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        var report = LongLora.Prepare(model, At40);
        var expected = from layer in Enumerable.Range(0, 2)
                       from proj in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }
                       select $"model.layers.{layer}.self_attn.{proj}";
        Assert.Equal(expected.Order(), report.WrappedModules.Order());
    }

    [Fact]
    public void Prepare_LeavesOnlyLoraEmbeddingsAndNormsTrainable()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.All(trainable, n => Assert.True(n.Contains("lora_", StringComparison.Ordinal) || n.Contains("embed", StringComparison.Ordinal) || n.Contains("norm", StringComparison.Ordinal), n));
        Assert.Contains("model.embed_tokens.weight", trainable);
        Assert.Contains("model.norm.weight", trainable);
        Assert.DoesNotContain(trainable, n => n.Contains("mlp", StringComparison.Ordinal) || n.StartsWith("lm_head", StringComparison.Ordinal));
    }

    [Fact]
    public void Prepare_ConfiguresS2ForTraining_AndFullAttentionForEvaluation()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        Assert.All(model.Model.Layers, layer =>
        {
            Assert.Equal(LongLoraOptions.DefaultS2, layer.SelfAttention.Core.TrainingOptions);
            Assert.Equal(AttentionMode.Full, layer.SelfAttention.Core.EvaluationOptions.Mode);
        });
    }

    [Fact]
    public void Prepare_S2Null_TrainsWithFullAttention()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40 with { S2 = null });
        Assert.All(model.Model.Layers, layer => Assert.Equal(AttentionMode.Full, layer.SelfAttention.Core.TrainingOptions.Mode));
    }

    [Fact]
    public void Prepare_KeepsTheUsersS2Settings()
    {
        using var model = new LlamaForCausalLM(BaseConfig with { AttentionDropout = 0.1 });
        var s2 = LongLoraOptions.DefaultS2 with { Dropout = 0.1, GroupSizeRatio = 0.5, WrapPolicy = S2WrapPolicy.Roll };
        LongLora.Prepare(model, At40 with { S2 = s2 });
        Assert.All(model.Model.Layers, layer => Assert.Equal(s2, layer.SelfAttention.Core.TrainingOptions));
    }

    // ---- conflicts are errors naming both values; defaults come from one place ----

    [Fact]
    public void Prepare_S2DropoutOtherThanTheModelsAttentionDropout_ThrowsNamingBoth()
    {
        using var model = new LlamaForCausalLM(BaseConfig with { AttentionDropout = 0.1 });
        var e = Assert.Throws<ArgumentException>(() => LongLora.Prepare(model, At40));
        Assert.Contains("S2.Dropout 0", e.Message, StringComparison.Ordinal);
        Assert.Contains("attention_dropout 0.1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ResolveLora_Default_IsLongLorasQkvoWithTheExtrasToSave()
    {
        var lora = At40.ResolveLora();
        Assert.Equal((8, 16.0, 0.0), (lora.Rank, lora.Alpha, lora.Dropout));
        Assert.Equal(new[] { "q_proj", "k_proj", "v_proj", "o_proj" }, lora.TargetModules);
        Assert.Equal(new[] { "embed", "norm" }, lora.ModulesToSave);
    }

    [Fact]
    public void ResolveLora_OverA4BitBase_DefaultsToAllLinear()
        => Assert.Equal(new[] { LoraOptions.AllLinear }, (At40 with { Quantization = new QuantizationOptions() }).ResolveLora().TargetModules);

    [Fact]
    public void ResolveLora_StartingFromTheDefault_KeepsLongLorasTargets()
    {
        var lora = (At40 with { Lora = LongLoraOptions.DefaultLora() with { Rank = 16 } }).ResolveLora();
        Assert.Equal(16, lora.Rank);
        Assert.Equal(new[] { "q_proj", "k_proj", "v_proj", "o_proj" }, lora.TargetModules);
    }

    [Fact]
    public void ResolveLora_LoraOptionsWithUnsetTargets_TakeLongLorasQKVO()
    {
        var lora = (At40 with { Lora = new LoraOptions { Rank = 16 } }).ResolveLora();
        Assert.Equal(16, lora.Rank);
        Assert.Equal(new[] { "q_proj", "k_proj", "v_proj", "o_proj" }, lora.TargetModules);
    }

    [Fact]
    public void ResolveLora_UnsetTargetsOverA4BitBase_TakeAllLinear()
        => Assert.Equal(new[] { LoraOptions.AllLinear },
            (At40 with { Quantization = new QuantizationOptions(), Lora = new LoraOptions { Rank = 16 } }).ResolveLora().TargetModules);

    [Fact]
    public void ResolveLora_AnExplicitQV_IsHonoured()
    {
        var lora = (At40 with { Lora = new LoraOptions { TargetModules = ["q_proj", "v_proj"] } }).ResolveLora();
        Assert.Equal(new[] { "q_proj", "v_proj" }, lora.TargetModules);
    }

    [Fact]
    public void ResolveLora_ATargetRegex_IsNotReplacedByTheDefaultTargets()
    {
        var lora = (At40 with { Lora = new LoraOptions { TargetRegex = @".*\.q_proj" } }).ResolveLora();
        Assert.Null(lora.TargetModules);
        Assert.Equal(@".*\.q_proj", lora.TargetRegex);
    }

    [Fact]
    public void Prepare_LoraWithTargetModulesAndARegex_IsAConflict_RefusedBeforeTheModelChanges()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        var options = At40 with { Lora = new LoraOptions { TargetModules = ["q_proj"], TargetRegex = @".*\.v_proj" } };
        var e = Assert.Throws<ArgumentException>(() => LongLora.Prepare(model, options));
        Assert.Equal("Lora", e.ParamName);
        Assert.Contains("TargetModules [q_proj] and TargetRegex", e.Message);
        Assert.Equal(BaseConfig.Rope, model.Config.Rope);                      // PI not applied: refused first
    }

    [Fact]
    public void Prepare_WithAnExplicitQV_WrapsExactlyQAndV()
    {
        using var model = new LlamaForCausalLM(BaseConfig);
        var report = LongLora.Prepare(model, At40 with { Lora = new LoraOptions { Rank = 4, TargetModules = ["q_proj", "v_proj"] } });
        Assert.Equal(BaseConfig.NumHiddenLayers * 2, report.WrappedModules.Count);
        Assert.All(report.WrappedModules, n => Assert.True(n.EndsWith(".q_proj", StringComparison.Ordinal) || n.EndsWith(".v_proj", StringComparison.Ordinal), n));
    }

    [Fact]
    public void Prepare_WithUnsetTargets_WrapsQKVO()
    {
        using var model = new LlamaForCausalLM(BaseConfig);
        var report = LongLora.Prepare(model, At40 with { Lora = new LoraOptions { Rank = 4 } });
        Assert.Equal(BaseConfig.NumHiddenLayers * 4, report.WrappedModules.Count);
        foreach (string proj in new[] { "q_proj", "k_proj", "v_proj", "o_proj" })
            Assert.Contains($"model.layers.0.self_attn.{proj}", report.WrappedModules);
    }

    [Fact]
    public void ResolveLora_ModulesToSaveOtherThanTrainableExtras_ThrowsNamingBoth()
    {
        var options = At40 with { Lora = LongLoraOptions.DefaultLora() with { ModulesToSave = ["embed"] } };
        var e = Assert.Throws<ArgumentException>(() => options.ResolveLora());
        Assert.Contains("ModulesToSave [embed]", e.Message, StringComparison.Ordinal);
        Assert.Contains("TrainableExtras [embed, norm]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ResolveLora_ModulesToSaveEqualToTrainableExtras_IsAccepted()
    {
        var options = At40 with { Lora = LongLoraOptions.DefaultLora() with { ModulesToSave = ["embed", "norm"] } };
        Assert.Equal(new[] { "embed", "norm" }, options.ResolveLora().ModulesToSave);
    }

    public static TheoryData<string, Func<LongLoraOptions>, string> BadOptions() => new()
    {
        { "a negative target length", () => new LongLoraOptions { TargetContextLength = -1 }, nameof(LongLoraOptions.TargetContextLength) },
        { "S2 options in full mode", () => new LongLoraOptions { S2 = new AttentionOptions() }, nameof(LongLoraOptions.S2) },
        { "an empty extra name", () => new LongLoraOptions { TrainableExtras = ["embed", " "] }, nameof(LongLoraOptions.TrainableExtras) },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Options_BadValue_ThrowsNamingTheProperty(string name, Func<LongLoraOptions> make, string property)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => make());
        Assert.True(e.ParamName == property, $"{name}: ParamName {e.ParamName}, expected {property}");
    }

    // ---- LongLoRA's convention for an already scaled rope ----

    public static TheoryData<string, double?, int, double> LongLoraShapedConfigs() => new()
    {
        // (rope factor in config.json or null for none, target, factor in force); max_position_embeddings 4096
        { "LongLoRA's 32k model (4096 x linear 8) at 32k", 8.0, 32768, 8.0 },
        { "LongLoRA's 32k model at 8k, inside its context", 8.0, 8192, 8.0 },
        { "LongLoRA's 32k model extended to 64k", 8.0, 65536, 16.0 },
        { "an unscaled 4k model to 32k", null, 32768, 8.0 },
        { "an unscaled 4k model within its window", null, 4096, 1.0 },
    };

    [Theory]
    [MemberData(nameof(LongLoraShapedConfigs))]
    public void ApplyPositionInterpolation_ReadsTheContextAsMaxPositionsTimesTheFactor(string name, double? configFactor, int target, double expected)
    {
        var json = JsonNode.Parse("""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 16, "hidden_size": 32,
             "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 4,
             "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu"}
            """)!.AsObject();
        if (configFactor is { } f) json["rope_scaling"] = new JsonObject { ["type"] = "linear", ["factor"] = f };
        using var model = new LlamaForCausalLM(LlamaConfig.FromJson(json));
        double factor = LongLora.ApplyPositionInterpolation(model, target);
        Assert.True(factor == expected, $"{name}: factor {factor}, expected {expected}");
        Assert.Equal(expected == 1.0 ? RopeType.Default : RopeType.Linear, model.Config.Rope.Type);
        Assert.Equal(expected, model.Config.Rope.Type == RopeType.Linear ? model.Config.Rope.Factor : 1.0);
        Assert.Equal(4096, model.Config.MaxPositionEmbeddings);
    }

    [Fact]
    public void ApplyPositionInterpolation_OtherRopeType_ThrowsNamingIt()
    {
        using var model = new LlamaForCausalLM(LlamaTrainingTests.Tiny() with
        {
            Rope = new RopeParameters { Type = RopeType.Dynamic, Factor = 2 },
        });
        var ex = Assert.Throws<NotSupportedException>(() => LongLora.ApplyPositionInterpolation(model, 1024));
        Assert.Contains("Dynamic", ex.Message, StringComparison.Ordinal);
    }

    // ---- saving and loading ----

    [Fact]
    public void SaveAdapter_WritesThePiConfig()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        string adapter = Path.Combine(root, "adapter");
        LongLora.SaveAdapter(model, adapter, SaveBase());
        Assert.Equal(model.Config.Rope, LlamaConfig.Load(adapter).Rope);
    }

    /// <summary>
    /// The adapter files and config.json are one unit: when config.json cannot be written (a folder holds its name), the
    /// previous adapter stays byte for byte and no temporary file is left, never a new adapter beside an old config.
    /// </summary>
    [Fact]
    public void SaveAdapter_ThatCannotWriteTheConfig_LeavesThePreviousAdapterWhole()
    {
        random.manual_seed(13);
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        string adapter = Path.Combine(root, "adapter-unit");
        LongLora.SaveAdapter(model, adapter);
        var before = Directory.GetFiles(adapter).Where(f => Path.GetFileName(f) != "config.json")
            .ToDictionary(f => f, File.ReadAllBytes);
        Assert.Equal(2, before.Count);
        Train(model, steps: 1);                                    // other adapter weights to write
        File.Delete(Path.Combine(adapter, "config.json"));
        Directory.CreateDirectory(Path.Combine(adapter, "config.json"));

        var e = Assert.Throws<IOException>(() => LongLora.SaveAdapter(model, adapter));

        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
        foreach (var (file, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(file));
        Assert.Equal(before.Keys.Order(), Directory.GetFiles(adapter).Order());
    }

    [Fact]
    public void SaveAdapter_UnderAFile_NamesTheFile()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        string file = Path.Combine(root, "notes.txt");
        File.WriteAllText(file, "keep");
        var e = Assert.Throws<IOException>(() => LongLora.SaveAdapter(model, Path.Combine(file, "adapter")));
        Assert.Contains($"'{file}' is a file, not a folder", e.Message, StringComparison.Ordinal);
        Assert.Equal("keep", File.ReadAllText(file));
    }

    [Fact]
    public void LoadAdapter_OnAFreshBase_ReproducesTheTrainedModel()
    {
        random.manual_seed(11);
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        Train(model);
        Tensor probe = Probe();
        Tensor trained = Logits(model, probe);
        string adapter = Path.Combine(root, "adapter");
        LongLora.SaveAdapter(model, adapter, SaveBase());

        using var fresh = LlamaCheckpoint.Load(SaveBase());
        LongLora.LoadAdapter(fresh, adapter);                      // no target length to remember
        fresh.eval();
        Assert.Equal(model.Config.Rope, fresh.Config.Rope);
        TensorAssert.Close(Logits(fresh, probe), trained, 1e-5, "adapter reloaded onto the base");
    }

    [Fact]
    public void LoadAdapter_OverA4BitBase_ReproducesTheTrainedModel()
    {
        random.manual_seed(12);
        var quantization = new QuantizationOptions();
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40 with { Quantization = quantization, GradientCheckpointing = false });
        Train(model, steps: 2);
        Tensor probe = Probe();
        Tensor trained = Logits(model, probe);
        string adapter = Path.Combine(root, "adapter-q");
        LongLora.SaveAdapter(model, adapter, SaveBase());

        using var fresh = LlamaCheckpoint.Load(SaveBase());
        ModelQuantizer.Quantize(fresh, quantization);
        LongLora.LoadAdapter(fresh, adapter);
        fresh.eval();
        TensorAssert.Close(Logits(fresh, probe), trained, 1e-5, "adapter reloaded onto the 4-bit base");
    }

    [Fact]
    public void LoadAdapter_ForAnotherModelShape_ThrowsNamingTheField()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        string adapter = Path.Combine(root, "adapter");
        LongLora.SaveAdapter(model, adapter);
        using var other = new LlamaForCausalLM(BaseConfig with { IntermediateSize = 64 });
        var e = Assert.Throws<ArgumentException>(() => LongLora.LoadAdapter(other, adapter));
        Assert.Contains("IntermediateSize 48 (model: 64)", e.Message, StringComparison.Ordinal);
    }

    /// <summary>An adapter whose weights do not fit is refused with the model as loaded: no LoRA, the rope not scaled.</summary>
    [Fact]
    public void LoadAdapter_WhoseWeightsDoNotFit_LeavesTheModelAsLoaded_RopeIncluded()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        string adapter = Path.Combine(root, "adapter");
        LongLora.SaveAdapter(model, adapter);
        string weights = Path.Combine(adapter, PeftAdapter.WeightsFileName);
        var tensors = LongContext.IO.SafetensorsFile.Load(weights);
        tensors.Remove(tensors.Keys.First(k => k.EndsWith(".lora_B.weight", StringComparison.Ordinal)));
        LongContext.IO.SafetensorsFile.Save(weights, tensors);

        using var fresh = LlamaCheckpoint.Load(SaveBase());
        Assert.Throws<InvalidDataException>(() => LongLora.LoadAdapter(fresh, adapter));
        Assert.Equal(BaseConfig.Rope, fresh.Config.Rope);
        Assert.Equal(BaseConfig.MaxPositionEmbeddings, fresh.Config.MaxPositionEmbeddings);
        Assert.Empty(LoraInjector.Layers(fresh));
    }

    [Fact]
    public void AdapterShapeDifferences_NamesEachDifferingField_AndIsNullForTheSameShape()
    {
        Assert.Null(LongLora.AdapterShapeDifferences(BaseConfig with { MaxPositionEmbeddings = 4 * BaseConfig.MaxPositionEmbeddings }, BaseConfig));
        Assert.Equal("IntermediateSize 48 (model: 64), NumHiddenLayers 1 (model: 3)",
            LongLora.AdapterShapeDifferences(BaseConfig with { NumHiddenLayers = 1 }, BaseConfig with { IntermediateSize = 64, NumHiddenLayers = 3 }));
    }

    [Fact]
    public void LoadAdapter_FolderWithoutConfig_ThrowsNamingTheFile()
    {
        using var model = new LlamaForCausalLM(BaseConfig);
        string empty = Directory.CreateDirectory(Path.Combine(root, "empty")).FullName;
        var e = Assert.Throws<FileNotFoundException>(() => LongLora.LoadAdapter(model, empty));
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SaveMerged_ReproducesTheTrainedModel()
    {
        random.manual_seed(13);
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, At40);
        Train(model);
        Tensor probe = Probe();
        string merged = Path.Combine(root, "merged");
        LongLora.SaveMerged(model, merged);
        using var plain = LlamaCheckpoint.Load(merged);
        Assert.Equal(model.Config.Rope, plain.Config.Rope);
        TensorAssert.Close(Logits(plain, probe), Logits(model, probe), 1e-5, "merged checkpoint");
    }

    [Fact]
    public void Prepare_WithQuantization_WrapsEveryLinearButLmHeadOverA4BitBase()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        var report = LongLora.Prepare(model, new LongLoraOptions { TargetContextLength = 32, Quantization = new QuantizationOptions() });
        Assert.Equal(14, report.WrappedModules.Count);                  // 7 linears in 2 layers; lm_head excluded
        Assert.DoesNotContain(report.WrappedModules, n => n.StartsWith("lm_head", StringComparison.Ordinal));
        Assert.Contains(model.modules(), m => m is Linear4Bit);
    }

    public static TheoryData<string, LongLoraOptions, string> RefusedBeforeAnyChange => new()
    {
        { "LoRA targets that match nothing", new LongLoraOptions { TargetContextLength = 32, Quantization = new QuantizationOptions(), Lora = new LoraOptions { TargetModules = ["qproj"] } },
            "match no Linear or Embedding module" },
        { "a trainable extra that selects nothing", new LongLoraOptions { TargetContextLength = 32, Quantization = new QuantizationOptions(), TrainableExtras = ["embed", "nrom"] },
            "nrom" },
        { "a quantization exclusion that matches nothing", new LongLoraOptions { TargetContextLength = 32, Quantization = new QuantizationOptions { Exclude = ["lm_head", "o_prj"] } },
            "Exclude [o_prj]" },
    };

    /// <summary>
    /// Each refusal leaves the model as loaded: no 4-bit layer, no LoRA layer, the rope and the attention untouched, every
    /// parameter still trainable as loaded (nothing frozen), so the caller can fix the options and prepare it again.
    /// </summary>
    [Theory]
    [MemberData(nameof(RefusedBeforeAnyChange))]
    public void Prepare_ABadTargetExtraOrExclusion_IsRefusedBeforeTheModelChanges(string name, LongLoraOptions options, string fragment)
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        var e = Assert.ThrowsAny<ArgumentException>(() => LongLora.Prepare(model, options));
        Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal), $"{name}: {e.Message}");
        Assert.DoesNotContain(model.modules(), m => m is Linear4Bit or LoraLayer);
        Assert.Equal(BaseConfig.Rope, model.Config.Rope);
        Assert.All(model.Model.Layers, l => Assert.Equal(AttentionMode.Full, l.SelfAttention.Core.TrainingOptions.Mode));
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
        LongLora.Prepare(model, options with { Lora = null, TrainableExtras = ["embed", "norm"], Quantization = new QuantizationOptions() });  // and it can be prepared after
        Assert.Equal(32, LongLora.ContextLength(model.Config));
    }

    [Fact]
    public void SaveMerged_Of4BitBase_IsTheSameFunctionInFloat32()
    {
        using var model = LlamaCheckpoint.Load(SaveBase());
        LongLora.Prepare(model, new LongLoraOptions { TargetContextLength = 32, Quantization = new QuantizationOptions() });
        model.eval();
        Tensor probe = Probe(32);
        string merged = Path.Combine(root, "merged-q");
        LongLora.SaveMerged(model, merged);                         // the dequantized base (+ LoRA delta)
        using var plain = LlamaCheckpoint.Load(merged);
        TensorAssert.Close(Logits(plain, probe), Logits(model, probe), 1e-4, "merged 4-bit checkpoint");
    }
}
