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
    public void SuffixTargets_WrapEveryMatchingLinear()
    {
        using var model = Model();
        var report = LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        Assert.Equal(QvNames, report.WrappedModules);
        Assert.All(QvNames, n => Assert.IsType<LoraLinear>(model.named_modules().Single(m => m.name == n).module));
    }

    [Fact]
    public void AtInit_TheInjectedModelComputesTheBaseModel()
    {
        using var model = Model(ScalarType.Float64);
        using var ids = tensor(new long[] { 1, 5, 7, 2 }).reshape(1, 4);
        using var before = model.call(ids);
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        TensorAssert.Close(model.call(ids), before, 1e-12, "B = 0 leaves the model unchanged");
    }

    [Fact]
    public void TheParentsForward_RunsThroughTheWrappers()
    {
        using var model = Model(ScalarType.Float64);
        using var ids = tensor(new long[] { 1, 5, 7, 2 }).reshape(1, 4);
        using var before = model.call(ids);
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        foreach (var (_, layer) in LoraInjector.Layers(model))
            using (no_grad()) layer.LoraB("default").normal_();
        double diff = (model.call(ids) - before).abs().max().item<double>();
        Assert.True(diff > 1e-6, "the parent's forward must run through the wrappers");
    }

    [Fact]
    public void TargetModulesAndARegexBothSet_AreAConflictNamingBoth_AndNothingIsWrapped()
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.Inject(model, new LoraOptions { TargetModules = ["q_proj"], TargetRegex = @"layers\.1\..*_proj" }));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("TargetModules [q_proj]", e.Message);
        Assert.Contains(@"TargetRegex 'layers\.1\..*_proj'", e.Message);
        Assert.Empty(LoraInjector.Layers(model));
    }

    [Fact]
    public void AModuleToSaveThatSelectsNothing_IsRefusedBeforeAnyLayerIsWrapped()
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.Inject(model, new LoraOptions { Rank = 2, ModulesToSave = ["embed", "no_such_module"] }));
        Assert.Contains("no_such_module", e.Message);
        Assert.Empty(LoraInjector.Layers(model));
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad, "nothing frozen"));
    }

    [Fact]
    public void ARegex_SelectsTheModulesItMatchesEntirely()
    {
        using var model = Model();
        var r = LoraInjector.Inject(model, new LoraOptions { TargetRegex = @"layers\.1\..*_proj" });
        Assert.Equal(["layers.1.self_attn.q_proj", "layers.1.self_attn.v_proj", "layers.1.self_attn.o_proj"], r.WrappedModules);
    }

    [Fact]
    public void AllLinear_SelectsEveryLinearButTheHead()
    {
        using var model = Model();
        var all = LoraInjector.Inject(model, new LoraOptions { TargetModules = [LoraOptions.AllLinear] });
        Assert.Equal(6, all.WrappedModules.Count);
        Assert.DoesNotContain("lm_head", all.WrappedModules);
    }

    [Fact]
    public void AnEmbeddingTarget_IsWrappedAsLoraEmbedding()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { TargetModules = ["embed_tokens"] });
        Assert.IsType<LoraEmbedding>(model.named_modules().Single(m => m.name == "embed_tokens").module);
    }

    [Fact]
    public void AResolver_DescribesModulesBeforeTheBuiltInRule()
    {
        using var model = Model();
        LoraBaseDescriptor? Padded(nn.Module m) => m is TorchSharp.Modules.Embedding e ? EmbeddingBaseDescriptor.Of(e, paddingIdx: 0) : null;
        LoraInjector.Inject(model, new LoraOptions { TargetModules = ["embed_tokens"] }, resolve: Padded);
        var layer = (LoraEmbedding)model.named_modules().Single(m => m.name == "embed_tokens").module;
        Assert.Equal(0L, layer.Base.PaddingIdx);
    }

    [Fact]
    public void AResolverDescribingAnotherModule_IsAnError()
    {
        using var model = Model();
        var stray = nn.Linear(8, 8);
        LoraBaseDescriptor? Wrong(nn.Module m) => m is TorchSharp.Modules.Linear ? LinearBaseDescriptor.Of(stray) : null;
        var e = Assert.Throws<InvalidOperationException>(() => LoraInjector.Inject(model, new LoraOptions(), resolve: Wrong));
        Assert.Contains("must describe the module it was given", e.Message);
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
    public void Counts_MatchAHandCount()
    {
        using var model = Model();
        var total = ParameterCounter.Count(model).Total;
        var report = LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        long lora = 4 * (2 * 8 + 8 * 2);
        Assert.Equal(new ParameterCount(total + lora, lora), report.Parameters);
    }

    [Fact]
    public void Counts_PrintAsPeftsSummary()
    {
        var counts = new ParameterCount(Total: 1000, Trainable: 128);
        Assert.Equal("trainable params: 128 || all params: 1,000 || trainable%: 12.8000", counts.ToString());
    }

    [Fact]
    public void LongLoraExtras_SelectEmbeddingsAndNorms()
    {
        using var model = Model();
        var report = LoraInjector.Inject(model, new LoraOptions { Rank = 2, ModulesToSave = ["embed", "norm"] });
        Assert.Equal(["embed_tokens", "layers.0.input_layernorm", "layers.1.input_layernorm", "norm"], report.TrainableModules);
    }

    [Fact]
    public void LongLoraExtras_AndTheAdapters_AloneRequireAndGetGradients()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { Rank = 2, ModulesToSave = ["embed", "norm"] });
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
    public void MarkTrainable_ReturnsTheFullNamesItSelects()
    {
        using var model = Model();
        Assert.Equal(["layers.0.input_layernorm", "layers.1.input_layernorm", "norm"], LoraInjector.MarkTrainable(model, ["norm"]));
    }

    [Fact]
    public void ASecondInjection_TrainsOnlyWhatItsOwnOptionsSelect()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { Rank = 2, ModulesToSave = ["norm"] });
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 }, "second");
        Assert.All(model.named_parameters().Where(p => p.name.Contains("norm.")), p => Assert.False(p.parameter.requires_grad, p.name));
    }

    [Fact]
    public void BiasAll_UnfreezesEveryBias()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { TargetModules = ["v_proj"], Bias = LoraBias.All });
        Assert.All(model.named_parameters().Where(p => p.name.EndsWith(".bias")), p => Assert.True(p.parameter.requires_grad, p.name));
    }

    [Fact]
    public void BiasLoraOnly_UnfreezesOnlyTheWrappedLayersBiases()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { TargetModules = ["q_proj"], Bias = LoraBias.LoraOnly });
        foreach (var (name, p) in model.named_parameters().Where(p => p.name.EndsWith(".bias")))
            Assert.True(name.EndsWith("q_proj.base_layer.bias") == p.requires_grad, name);
    }

    /// <summary>
    /// A second injection under a name some targets already hold (here v_proj, wrapped first) is refused naming the
    /// first such layer, before q_proj (earlier in the tree and not wrapped yet) is wrapped.
    /// </summary>
    [Fact]
    public void InjectingAnAdapterNameATargetAlreadyHolds_IsRefusedBeforeAnyModuleChanges()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { Rank = 2, TargetModules = ["v_proj"] });
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.Inject(model, new LoraOptions { Rank = 2, TargetModules = ["q_proj", "v_proj"] }));
        Assert.Equal("adapterName", e.ParamName);
        Assert.Contains("'layers.0.self_attn.v_proj'", e.Message);
        Assert.Equal(["layers.0.self_attn.v_proj", "layers.1.self_attn.v_proj"], LoraInjector.Layers(model).Select(l => l.Name));
    }

    [Fact]
    public void ALaterTargetWhoseFieldCannotHoldTheWrapper_IsRefusedBeforeAnyModuleChanges()
    {
        using var model = new HalfRigidParent();
        var e = Assert.Throws<InvalidOperationException>(() => LoraInjector.Inject(model, new LoraOptions { TargetModules = ["k_proj", "q_proj"] }));
        Assert.Contains("field 'q_proj'", e.Message);
        Assert.Empty(LoraInjector.Layers(model));                           // k_proj, found first, was not wrapped
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));  // nor anything frozen
    }

    [Fact]
    public void ASecondAdapter_IsAddedToTheWrappedLayers()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        LoraInjector.Inject(model, new LoraOptions { Rank = 4 }, "long");
        Assert.All(LoraInjector.Layers(model), l => Assert.Equal(["default", "long"], l.Layer.AdapterNames));
    }

    [Fact]
    public void SetActiveAdapter_ActivatesItInEveryLayer_AndOnlyItTrains()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        LoraInjector.Inject(model, new LoraOptions { Rank = 4 }, "long");
        LoraInjector.SetActiveAdapter(model, "long");
        Assert.All(LoraInjector.Layers(model), l => Assert.Equal("long", l.Layer.ActiveAdapter));
        Assert.Equal(4 * (4 * 8 + 8 * 4), ParameterCounter.Count(model).Trainable);
    }
    /// <summary>
    /// TorchSharp's <c>Sequential</c> keeps its children in its own list, outside the module registry: injection replaces
    /// the list slot, so the container's forward runs the adapter. Reference: x W^T + b + (alpha / r) (x A^T) B^T computed
    /// in float64 from the weights (B set non-zero so the adapter contributes), 1e-12.
    /// </summary>
    [Fact]
    public void ChildrenOfASequential_AreWrapped_AndItsForwardRunsTheAdapter()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var model = nn.Sequential(("q_proj", nn.Linear(6, 5, dtype: ScalarType.Float64)), ("act", nn.Tanh()));
        var report = LoraInjector.Inject(model, new LoraOptions { Rank = 2, Alpha = 6, TargetModules = ["q_proj"] });
        Assert.Equal(["q_proj"], report.WrappedModules);
        var layer = Assert.IsType<LoraLinear>(model.named_children().Single(c => c.name == "q_proj").module);
        Assert.Contains(model.named_parameters(), p => p.name == "q_proj.lora_A.default.weight");
        using (no_grad()) layer.LoraB("default").copy_(randn(5, 2, dtype: ScalarType.Float64));

        var x = randn(4, 6, dtype: ScalarType.Float64);
        var w = model.named_parameters().Single(p => p.name == "q_proj.base_layer.weight").parameter;
        var b = model.named_parameters().Single(p => p.name == "q_proj.base_layer.bias").parameter;
        var expected = (x.matmul(w.t()) + b + 3.0 * x.matmul(layer.LoraA("default").t()).matmul(layer.LoraB("default").t())).tanh();
        TensorAssert.Close(model.call(x), expected, 1e-12, "Sequential's forward through the LoRA wrapper");
    }

    private static Dictionary<string, Tensor> Weights(nn.Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    private static void AssertWeightsEqual(Dictionary<string, Tensor> before, nn.Module model)
    {
        foreach (var (name, p) in model.named_parameters())
            Assert.True(p.allclose(before[name], rtol: 0, atol: 0), $"'{name}' changed");
    }

    private static TinyModel MergeableModel()
    {
        var model = Model(ScalarType.Float64);
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        foreach (var (_, layer) in LoraInjector.Layers(model))
            using (no_grad()) layer.LoraB("default").normal_();
        return model;
    }

    [Fact]
    public void MergingTwice_IsRefusedBeforeAnyWeightChanges_NamingALayer()
    {
        using var scope = NewDisposeScope();
        var model = MergeableModel();
        LoraInjector.Merge(model);
        var merged = Weights(model);
        var e = Assert.Throws<InvalidOperationException>(() => LoraInjector.Merge(model));
        Assert.Contains("4 of 4 LoRA layers", e.Message, StringComparison.Ordinal);
        Assert.Contains("'layers.0.self_attn.q_proj', which is already merged", e.Message, StringComparison.Ordinal);
        AssertWeightsEqual(merged, model);
    }

    /// <summary>One layer merged by hand: the model-wide merge refuses instead of merging the other three and then failing.</summary>
    [Fact]
    public void MergeWithOneLayerAlreadyMerged_ChangesNothing()
    {
        using var scope = NewDisposeScope();
        var model = MergeableModel();
        LoraInjector.Layers(model)[2].Layer.Merge();
        var before = Weights(model);
        var e = Assert.Throws<InvalidOperationException>(() => LoraInjector.Merge(model));
        Assert.Contains("1 of 4 LoRA layers", e.Message, StringComparison.Ordinal);
        Assert.Contains("'layers.1.self_attn.q_proj'", e.Message, StringComparison.Ordinal);
        AssertWeightsEqual(before, model);
        Assert.Equal(1, LoraInjector.Layers(model).Count(l => l.Layer.Merged));
    }

    [Fact]
    public void MergeWithAdaptersDisabled_IsRefused()
    {
        using var scope = NewDisposeScope();
        var model = MergeableModel();
        LoraInjector.SetAdapterEnabled(model, false);
        var e = Assert.Throws<InvalidOperationException>(() => LoraInjector.Merge(model));
        Assert.Contains("disabled", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(LoraInjector.Layers(model), l => l.Layer.Merged);
    }

    [Fact]
    public void UnmergeWithNothingMerged_IsReported()
    {
        using var scope = NewDisposeScope();
        var model = MergeableModel();
        var e = Assert.Throws<InvalidOperationException>(() => LoraInjector.Unmerge(model));
        Assert.Contains("nothing to unmerge", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MergeAndUnmerge_OfAModelWithoutLora_AreErrorsNamingTheModel()
    {
        using var scope = NewDisposeScope();
        var model = Model();
        var merge = Assert.Throws<ArgumentException>(() => LoraInjector.Merge(model));
        Assert.Equal("root", merge.ParamName);
        Assert.Contains("TinyModel", merge.Message, StringComparison.Ordinal);
        Assert.Contains("nothing to merge", merge.Message, StringComparison.Ordinal);
        var unmerge = Assert.Throws<ArgumentException>(() => LoraInjector.Unmerge(model));
        Assert.Contains("nothing to unmerge", unmerge.Message, StringComparison.Ordinal);
    }

    /// <summary>A base that refuses the write part-way (here the last of four): the three merged before it are unmerged
    /// again: no layer is left merged and every weight is back at its value before the call (merge then unmerge of s·B·A in
    /// float64 is exact only up to rounding: 1e-12).</summary>
    [Fact]
    public void MergeRefusedByALaterBase_RollsBackTheEarlierLayers()
    {
        using var scope = NewDisposeScope();
        var model = Model(ScalarType.Float64);
        var last = (TorchSharp.Modules.Linear)model.named_modules().Single(m => m.name == "layers.1.self_attn.v_proj").module;
        LoraBaseDescriptor? ReadOnlyLast(nn.Module m) => ReferenceEquals(m, last) ? new ReadOnlyLinear(last) : null;
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 }, resolve: ReadOnlyLast);
        foreach (var (_, layer) in LoraInjector.Layers(model))
            using (no_grad()) layer.LoraB("default").normal_();
        var before = Weights(model);
        var e = Assert.Throws<NotSupportedException>(() => LoraInjector.Merge(model));
        Assert.Equal(ReadOnlyLinear.Refusal, e.Message);
        Assert.DoesNotContain(LoraInjector.Layers(model), l => l.Layer.Merged);
        foreach (var (name, p) in model.named_parameters())
            TensorAssert.Close(p, before[name], 1e-12, name);
    }

    private sealed class ReadOnlyLinear(TorchSharp.Modules.Linear linear) : LinearBaseDescriptor(linear, linear.weight!.shape[1], linear.weight.shape[0])
    {
        public const string Refusal = "this base is read-only";

        public override ScalarType WeightDtype => linear.weight!.dtype;

        public override Device Device => linear.weight!.device;

        public override bool WeightIsCopy => false;

        public override Tensor ReadWeight() => linear.weight!;

        public override Tensor? Bias => linear.bias;

        public override void AddToWeight(Tensor delta) => throw new NotSupportedException(Refusal);
    }
}
