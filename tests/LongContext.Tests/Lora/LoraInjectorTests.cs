using LongContext.Lora;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

[Trait(Category.Name, Category.Lora)]
public sealed class LoraInjectorTests
{
    private static TinyModel Model(ScalarType dtype = ScalarType.Float32)
    {
        manual_seed(11);
        return new TinyModel(vocab: 20, dim: 8, nLayers: 2, dtype);
    }

    private static readonly string[] QvNames =
        ["layers.0.self_attn.q_proj", "layers.0.self_attn.v_proj", "layers.1.self_attn.q_proj", "layers.1.self_attn.v_proj"];

    [Fact]
    public void SuffixTargets_WrapEveryMatchingLinear_AndTheParentCallsTheWrapper()
    {
        using var model = Model(ScalarType.Float64);
        using var ids = tensor(new long[] { 1, 5, 7, 2 }).reshape(1, 4);
        using var before = model.call(ids);
        var report = LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        Assert.Equal(QvNames, report.WrappedModules);
        Assert.All(QvNames, n => Assert.IsType<LoraLinear>(model.named_modules().Single(m => m.name == n).module));
        TensorAssert.Close(model.call(ids), before, 1e-12, "B = 0 leaves the model unchanged");
        foreach (var (_, layer) in LoraInjector.Layers(model))
            using (no_grad()) layer.LoraB("default").normal_();
        double diff = (model.call(ids) - before).abs().max().item<double>();
        Assert.True(diff > 1e-6, "the parent's forward must run through the wrappers");
    }

    [Fact]
    public void Regex_AndAllLinear_SelectAsPeftDoes()
    {
        using var m1 = Model();
        var r = LoraInjector.Inject(m1, new LoraOptions { TargetRegex = @"layers\.1\..*_proj" });
        Assert.Equal(["layers.1.self_attn.q_proj", "layers.1.self_attn.v_proj", "layers.1.self_attn.o_proj"], r.WrappedModules);
        using var m2 = Model();
        var all = LoraInjector.Inject(m2, new LoraOptions { TargetModules = [LoraOptions.AllLinear] });
        Assert.Equal(6, all.WrappedModules.Count);
        Assert.DoesNotContain("lm_head", all.WrappedModules);
    }

    [Fact]
    public void Targets_ThatMatchNothing_AreAnErrorNamingThem()
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.Inject(model, new LoraOptions { TargetModules = ["qkv"] }));
        Assert.Contains("qkv", e.Message);
        Assert.Equal("options", e.ParamName);
    }

    [Fact]
    public void AFieldDeclaredAsLinear_CannotHoldTheWrapper_AndTheErrorSaysWhy()
    {
        using var model = new RigidParent();
        var e = Assert.Throws<InvalidOperationException>(() => LoraInjector.Inject(model, new LoraOptions { TargetModules = ["q_proj"] }));
        Assert.Contains("q_proj", e.Message);
        Assert.Contains("Module<Tensor, Tensor>", e.Message);
    }

    [Fact]
    public void Freezing_AndCounts_MatchAHandCount()
    {
        using var model = Model();
        var total = ParameterCounter.Count(model).Total;
        var report = LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        long lora = 4 * (2 * 8 + 8 * 2);
        Assert.Equal(total + lora, report.Parameters.Total);
        Assert.Equal(lora, report.Parameters.Trainable);
        Assert.Equal(100.0 * lora / (total + lora), report.Parameters.TrainablePercent, 12);
        Assert.Contains("trainable params: 128", report.Parameters.ToString());
    }

    [Fact]
    public void LongLoraExtras_EmbedAndNorm_TrainInFull_AndGradientsReachOnlyThemAndTheAdapters()
    {
        using var model = Model();
        var report = LoraInjector.Inject(model, new LoraOptions { Rank = 2, ModulesToSave = ["embed", "norm"] });
        Assert.Equal(["embed_tokens", "layers.0.input_layernorm", "layers.1.input_layernorm", "norm"], report.TrainableModules);
        foreach (var (_, layer) in LoraInjector.Layers(model))
            using (no_grad()) layer.LoraB("default").normal_();
        using var ids = tensor(new long[] { 3, 4, 5 }).reshape(1, 3);
        using var loss = model.call(ids).pow(2).sum();
        loss.backward();
        foreach (var (name, p) in model.named_parameters())
        {
            bool shouldTrain = name.Contains(".lora_") || name.StartsWith("embed_tokens.") || name.Contains("norm.");
            Assert.True(shouldTrain == p.requires_grad, $"{name}: requires_grad {p.requires_grad}");
            Assert.True(shouldTrain == (p.grad is not null), $"{name}: grad {(p.grad is null ? "absent" : "present")}");
        }
    }

    [Fact]
    public void MarkTrainable_OnANameThatSelectsNothing_IsAnError()
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.MarkTrainable(model, ["wte"]));
        Assert.Contains("'wte'", e.Message);
    }

    [Fact]
    public void BiasAll_UnfreezesEveryBias_LoraOnly_OnlyTheWrappedOnes()
    {
        using var m1 = Model();
        LoraInjector.Inject(m1, new LoraOptions { TargetModules = ["v_proj"], Bias = LoraBias.All });
        Assert.All(m1.named_parameters().Where(p => p.name.EndsWith(".bias")), p => Assert.True(p.parameter.requires_grad, p.name));
        using var m2 = Model();
        LoraInjector.Inject(m2, new LoraOptions { TargetModules = ["q_proj"], Bias = LoraBias.LoraOnly });
        foreach (var (name, p) in m2.named_parameters().Where(p => p.name.EndsWith(".bias")))
            Assert.True(name.EndsWith("q_proj.base_layer.bias") == p.requires_grad, name);
    }

    [Fact]
    public void SecondAdapter_IsAddedToWrappedLayers_AndActivatedByName()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        LoraInjector.Inject(model, new LoraOptions { Rank = 4 }, "long");
        Assert.All(LoraInjector.Layers(model), l => Assert.Equal(["default", "long"], l.Layer.AdapterNames));
        LoraInjector.SetActiveAdapter(model, "long");
        Assert.All(LoraInjector.Layers(model), l => Assert.Equal("long", l.Layer.ActiveAdapter));
        Assert.Equal(4 * (4 * 8 + 8 * 4), ParameterCounter.Count(model).Trainable);
    }
}
