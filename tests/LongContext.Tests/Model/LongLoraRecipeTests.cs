using LongContext.Attention;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Rope;
using LongContext.Tests.Support;
using LongContext.Training;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class LongLoraRecipeTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), $"lc-longlora-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    private string SaveBase()
    {
        random.manual_seed(8);
        using var model = new LlamaForCausalLM(LlamaTrainingTests.Tiny(vocab: 16) with { MaxPositionEmbeddings = 16 });
        string folder = Path.Combine(root, "base");
        LlamaCheckpoint.Save(model, folder);
        return folder;
    }

    [Fact]
    public void Prepare_SetsPi_S2_LoraAndExtras_ThenAdapterAndMergedCheckpointReproduceTheTrainedModel()
    {
        string baseFolder = SaveBase();
        using var model = LlamaCheckpoint.Load(baseFolder);
        var report = LongLora.Prepare(model, new LongLoraOptions
        {
            TargetContextLength = 40,
            S2Attention = new AttentionOptions { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.25 },
        });

        // PI: ceil(40 / 16) = 3, written into the config as linear scaling.
        Assert.Equal(RopeType.Linear, model.Config.Rope.Type);
        Assert.Equal(3.0, model.Config.Rope.Factor);
        Assert.Equal(48, model.Config.MaxPositionEmbeddings);
        Assert.Equal(8, report.WrappedModules.Count);                   // q, k, v, o in 2 layers
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.All(trainable, n => Assert.True(n.Contains("lora_", StringComparison.Ordinal) || n.Contains("embed", StringComparison.Ordinal) || n.Contains("norm", StringComparison.Ordinal), n));
        Assert.Contains("model.embed_tokens.weight", trainable);
        Assert.Contains("model.norm.weight", trainable);
        Assert.DoesNotContain(trainable, n => n.Contains("mlp", StringComparison.Ordinal) || n.StartsWith("lm_head", StringComparison.Ordinal));

        // A few seeded steps at the target length (S2 with G = 8 over N = 32, checkpointed).
        using var optimizer = optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 1e-2);
        var generator = new TorchSharp.torch.Generator(5);
        for (int step = 0; step < 5; step++)
        {
            using var scope = NewDisposeScope();
            Tensor ids = randint(0, 16, [2, 32], dtype: ScalarType.Int64, generator: generator);
            optimizer.zero_grad();
            model.Loss(ids, ids).backward();
            optimizer.step();
        }
        model.eval();
        Tensor probe = randint(0, 16, [1, 40], dtype: ScalarType.Int64, generator: generator);
        Tensor trained;
        using (no_grad()) trained = model.forward(probe);

        // Adapter + extras, loaded onto a fresh base with the same PI.
        string adapter = Path.Combine(root, "adapter");
        LongLora.SaveAdapter(model, adapter, baseFolder);
        using (var fresh = LlamaCheckpoint.Load(baseFolder))
        {
            LongLora.ApplyPositionInterpolation(fresh, 40);
            PeftAdapter.Load(fresh, adapter);
            fresh.eval();
            using (no_grad()) TensorAssert.Close(fresh.forward(probe), trained, 1e-5, "adapter reloaded onto the base");
        }
        Assert.Equal(model.Config.Rope, LlamaConfig.Load(adapter).Rope);

        // Merged plain checkpoint.
        string merged = Path.Combine(root, "merged");
        LongLora.SaveMerged(model, merged);
        using var plain = LlamaCheckpoint.Load(merged);
        Assert.Equal(model.Config.Rope, plain.Config.Rope);
        using (no_grad()) TensorAssert.Close(plain.forward(probe), trained, 1e-5, "merged checkpoint");
    }

    [Fact]
    public void Prepare_WithQuantization_WrapsAllLinearOverA4BitBase_AndMergesToADenseCheckpoint()
    {
        string baseFolder = SaveBase();
        using var model = LlamaCheckpoint.Load(baseFolder);
        var report = LongLora.Prepare(model, new LongLoraOptions { TargetContextLength = 32, Quantization = new LongContext.Quantization.QuantizationOptions() });
        Assert.Equal(14, report.WrappedModules.Count);                  // 7 linears in 2 layers; lm_head excluded
        Assert.Contains(model.modules(), m => m is LongContext.Quantization.Linear4Bit);
        model.eval();
        Tensor probe = randint(0, 16, [1, 32], dtype: ScalarType.Int64, generator: new TorchSharp.torch.Generator(3));
        Tensor logits;
        using (no_grad()) logits = model.forward(probe);

        // The merged checkpoint holds the dequantized base (+ LoRA delta): the same function in float32.
        string merged = Path.Combine(root, "merged-q");
        LongLora.SaveMerged(model, merged);
        using var plain = LlamaCheckpoint.Load(merged);
        using (no_grad()) TensorAssert.Close(plain.forward(probe), logits, 1e-4, "merged 4-bit checkpoint");
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

    [Fact]
    public void Options_BadValues_ThrowNamingThem()
    {
        var a = Assert.Throws<ArgumentOutOfRangeException>(() => new LongLoraOptions { TargetContextLength = -1 });
        Assert.Equal(nameof(LongLoraOptions.TargetContextLength), a.ParamName);
        var b = Assert.Throws<ArgumentException>(() => new LongLoraOptions { S2Attention = new AttentionOptions() });
        Assert.Equal(nameof(LongLoraOptions.S2Attention), b.ParamName);
        Assert.Contains("Full", b.Message, StringComparison.Ordinal);
    }
}
