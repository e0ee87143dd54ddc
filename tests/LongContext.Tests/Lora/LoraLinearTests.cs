using LongContext.Lora;
using LongContext.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

[Trait(Category.Name, Category.Lora)]
public sealed class LoraLinearTests
{
    private static LoraLinear MakeLayer(LoraOptions options, bool bias, ScalarType dtype = ScalarType.Float64, long inF = 12, long outF = 10)
    {
        manual_seed(7);
        var lin = nn.Linear(inF, outF, hasBias: bias, dtype: dtype);
        var layer = LoraLinear.Wrap(lin, options);
        using (no_grad()) layer.LoraB("default").normal_();   // B = 0 at init would hide the branch
        return layer;
    }

    private static Linear BaseOf(LoraLinear layer) => (Linear)layer.BaseLayer;

    /// <summary>x·Wᵀ + b + s·x·Aᵀ·Bᵀ computed element by element in float64.</summary>
    internal static Tensor ClosedForm(Tensor x, Tensor w, Tensor? b, Tensor a, Tensor bm, double s)
    {
        static double[] Values(Tensor t) => t.detach().to(float64).data<double>().ToArray();
        double[] X = Values(x), W = Values(w), A = Values(a), B = Values(bm);
        double[]? bias = b is null ? null : Values(b);
        long n = x.shape[0], inF = x.shape[1], outF = w.shape[0], r = a.shape[0];
        var y = new double[n * outF];
        for (long i = 0; i < n; i++)
        {
            var h = new double[r];
            for (long k = 0; k < r; k++) for (long j = 0; j < inF; j++) h[k] += X[i * inF + j] * A[k * inF + j];
            for (long o = 0; o < outF; o++)
            {
                double acc = bias?[o] ?? 0;
                for (long j = 0; j < inF; j++) acc += X[i * inF + j] * W[o * inF + j];
                for (long k = 0; k < r; k++) acc += s * h[k] * B[o * r + k];
                y[i * outF + o] = acc;
            }
        }
        return tensor(y, n, outF);
    }

    private static Tensor ClosedForm(Tensor x, LoraLinear layer, string adapter = "default")
        => ClosedForm(x, BaseOf(layer).weight!, BaseOf(layer).bias, layer.LoraA(adapter), layer.LoraB(adapter), layer.GetOptions(adapter).Scaling);

    public static TheoryData<string, bool, bool, bool> ForwardVariants => new()
    {
        { "fused, with bias, alpha/r", true, true, false },
        { "unfused, with bias, alpha/r", false, true, false },
        { "fused, no bias, rsLoRA", true, false, true },
        { "unfused, no bias, rsLoRA", false, false, true },
    };

    [Theory]
    [MemberData(nameof(ForwardVariants))]
    public void Forward_EqualsTheFloat64ClosedForm(string variant, bool fused, bool bias, bool rsLora)
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 3, Alpha = 6, UseRsLora = rsLora, Init = LoraInit.Gaussian }, bias);
        layer.FusedForward = fused;
        using var x = randn(5, 12, dtype: float64);
        using var y = layer.call(x);
        TensorAssert.Close(y, ClosedForm(x, layer), 1e-12, variant);
    }

    [Theory]
    [InlineData("alpha/r", false, 2.0)]
    [InlineData("rsLoRA: alpha/sqrt(r)", true, 3.4641016151377544)]   // 6 / sqrt(3)
    public void Scaling_FollowsTheRule(string rule, bool rsLora, double expected)
        => Assert.True(Math.Abs(new LoraOptions { Rank = 3, Alpha = 6, UseRsLora = rsLora }.Scaling - expected) < 1e-15, rule);

    [Fact]
    public void Forward_On3DInput_KeepsLeadingDimensions()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: true);
        using var x = randn(2, 3, 12, dtype: float64);
        using var y = layer.call(x);
        Assert.Equal(new long[] { 2, 3, 10 }, y.shape);
        TensorAssert.Close(y.reshape(6, 10), ClosedForm(x.reshape(6, 12), layer), 1e-12, "3-D input");
    }

    [Fact]
    public void AnInputOfTheWrongWidth_IsAnErrorStatingItsShapeAndTheExpectedWidth()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: true);
        using var x = randn(3, 11, dtype: float64);
        var e = Assert.Throws<ArgumentException>(() => layer.call(x));
        Assert.Equal("x", e.ParamName);
        Assert.Contains("[3, 11]", e.Message);
        Assert.Contains("12", e.Message);
    }

    [Fact]
    public void Dropout_InEvalMode_IsTheIdentity()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2, Dropout = 0.5 }, bias: false);
        using var x = randn(64, 12, dtype: float64);
        layer.eval();
        TensorAssert.Close(layer.call(x), ClosedForm(x, layer), 1e-12, "eval");
    }

    [Fact]
    public void Dropout_InTraining_ChangesTheLoraBranch()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2, Dropout = 0.5 }, bias: false);
        using var x = randn(64, 12, dtype: float64);
        layer.train();
        using var y = layer.call(x);
        double diff = (y - ClosedForm(x, layer)).abs().max().item<double>();
        Assert.True(diff > 1e-6, "dropout in training must change the LoRA branch");
    }

    [Fact]
    public void DefaultInit_LeavesTheOutputEqualToTheBase()
    {
        var lin = nn.Linear(100, 20, hasBias: false, dtype: float64);
        using var layer = LoraLinear.Wrap(lin, new LoraOptions { Rank = 16 });
        using var x = randn(4, 100, dtype: float64);
        TensorAssert.Close(layer.call(x), lin.call(x), 1e-12, "identity at init");
    }

    [Fact]
    public void DefaultInit_DrawsAKaimingUniformWithASqrt5()
    {
        using var layer = LoraLinear.Wrap(nn.Linear(100, 20, hasBias: false, dtype: float64), new LoraOptions { Rank = 16 });
        // kaiming_uniform(a=sqrt(5)) on (16, 100): bound = sqrt(6 / ((1 + 5) * 100)) = 0.1
        Assert.InRange(layer.LoraA("default").abs().max().item<double>(), 0.09, 0.1);
    }

    [Fact]
    public void GaussianInit_DrawsAWithStdOneOverR()
    {
        using var layer = LoraLinear.Wrap(nn.Linear(400, 20, hasBias: false, dtype: float64), new LoraOptions { Rank = 10, Init = LoraInit.Gaussian });
        Assert.InRange(layer.LoraA("default").std().item<double>(), 0.095, 0.105);   // 4,000 draws of N(0, 0.1²)
    }

    [Theory]
    [InlineData("true: kaiming-uniform A", LoraInit.KaimingUniform)]
    [InlineData("gaussian", LoraInit.Gaussian)]
    public void ResetInits_ZeroB(string init, LoraInit mode)
    {
        using var layer = LoraLinear.Wrap(nn.Linear(8, 6, dtype: float64), new LoraOptions { Rank = 2, Init = mode });
        Assert.True(layer.LoraB("default").abs().max().item<double>() == 0, $"{init}: B must start at zero");
    }

    [Fact]
    public void RandomInit_DrawsBAsALinearWeight()
    {
        using var layer = LoraLinear.Wrap(nn.Linear(8, 6, dtype: float64), new LoraOptions { Rank = 4, Init = LoraInit.Random });
        double max = layer.LoraB("default").abs().max().item<double>();
        // nn.Linear's init on B (6, 4): kaiming_uniform(a=sqrt(5)) over fan-in 4, bound 1/sqrt(4) = 0.5
        Assert.InRange(max, 1e-3, 0.5);
    }

    [Fact]
    public void Merge_AddsTheScaledProductToTheBaseWeight()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 4, Alpha = 16 }, bias: true);
        using var w0 = BaseOf(layer).weight!.detach().clone();
        using var expected = w0 + 4.0 * layer.LoraB("default").matmul(layer.LoraA("default"));   // s = 16 / 4
        layer.Merge();
        Assert.True(layer.Merged);
        TensorAssert.Close(BaseOf(layer).weight!, expected, 1e-12, "merged weight = W + s·B·A");
    }

    [Fact]
    public void MergedForward_EqualsTheUnmergedForward()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 4, Alpha = 16 }, bias: true, ScalarType.Float32);
        using var x = randn(7, 12);
        using var unmerged = layer.call(x);
        layer.Merge();
        TensorAssert.Close(layer.call(x), unmerged, 1e-5, "merged forward");
    }

    [Fact]
    public void Unmerge_RestoresTheBaseWeight()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 4, Alpha = 16 }, bias: true);
        using var w0 = BaseOf(layer).weight!.detach().clone();
        layer.Merge();
        layer.Unmerge();
        Assert.False(layer.Merged);
        TensorAssert.Close(BaseOf(layer).weight!, w0, 1e-12, "unmerged weight");
    }

    [Fact]
    public void MergingTwice_IsAnError()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: false);
        layer.Merge();
        var e = Assert.Throws<InvalidOperationException>(layer.Merge);
        Assert.Contains("already merged", e.Message);
    }

    [Fact]
    public void UnmergingWithoutAMerge_IsAnError()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: false);
        var e = Assert.Throws<InvalidOperationException>(layer.Unmerge);
        Assert.Contains("no adapter is merged", e.Message);
    }

    [Fact]
    public void DisabledAdapter_GivesTheBaseOutput()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: true);
        using var x = randn(3, 12, dtype: float64);
        layer.AdapterEnabled = false;
        TensorAssert.Close(layer.call(x), layer.BaseLayer.call(x), 0, "disabled");
    }

    [Fact]
    public void DisablingWhileMerged_IsAnError()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: true);
        layer.Merge();
        Assert.Throws<InvalidOperationException>(() => layer.AdapterEnabled = false);
    }

    [Fact]
    public void ASecondAdapter_IsAddedWithoutBecomingActive()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: false);
        layer.AddAdapter("second", new LoraOptions { Rank = 5 });
        Assert.Equal(new[] { "default", "second" }, layer.AdapterNames);
        Assert.Equal("default", layer.ActiveAdapter);
    }

    [Fact]
    public void TheActiveAdapter_AloneApplies()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: false);
        layer.AddAdapter("second", new LoraOptions { Rank = 5, Alpha = 5, Init = LoraInit.Gaussian });
        using (no_grad()) layer.LoraB("second").normal_();
        layer.SetActiveAdapter("second");
        using var x = randn(3, 12, dtype: float64);
        TensorAssert.Close(layer.call(x), ClosedForm(x, layer, "second"), 1e-12, "second adapter");
    }

    [Fact]
    public void TheActiveAdapter_AloneTrains()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: false);
        layer.AddAdapter("second", new LoraOptions { Rank = 5 });
        layer.SetActiveAdapter("second");
        Assert.True(layer.LoraA("second").requires_grad && layer.LoraB("second").requires_grad);
        Assert.False(layer.LoraA("default").requires_grad || layer.LoraB("default").requires_grad);
    }

    [Fact]
    public void SelectingAMissingAdapter_IsAnErrorNamingIt()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: false);
        var e = Assert.Throws<ArgumentException>(() => layer.SetActiveAdapter("missing"));
        Assert.Contains("missing", e.Message);
    }

    private static Tensor[] Gradients(LoraLinear layer, Tensor x0, bool fused)
    {
        layer.FusedForward = fused;
        layer.zero_grad();
        using var x = x0.clone().requires_grad_();
        using var y = layer.call(x);
        using var loss = (y * y).sum();
        loss.backward();
        return [x.grad!.clone(), layer.LoraA("default").grad!.clone(), layer.LoraB("default").grad!.clone()];
    }

    // The gradient tests run at s = alpha / r = 2: at s = 1 a scaling missing from (or doubled in) a backward term is invisible.

    [Fact]
    public void Gradients_OfTheFusedPath_EqualTheUnfusedPath()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 3, Alpha = 6 }, bias: true);
        using var x0 = randn(6, 12, dtype: float64);
        var fused = Gradients(layer, x0, fused: true);
        var unfused = Gradients(layer, x0, fused: false);
        string[] names = ["dx", "dA", "dB"];
        for (int i = 0; i < 3; i++) TensorAssert.Close(fused[i], unfused[i], 1e-10, names[i]);
    }

    [Theory]
    [InlineData("fused", true)]
    [InlineData("unfused", false)]
    public void Gradients_ReachOnlyAAndB(string path, bool fused)
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 3, Alpha = 3 }, bias: true);
        using var x0 = randn(6, 12, dtype: float64);
        _ = Gradients(layer, x0, fused);
        Assert.False(BaseOf(layer).weight!.requires_grad, path);
        Assert.Null(BaseOf(layer).weight!.grad);
        Assert.Null(BaseOf(layer).bias!.grad);
    }

    [Theory]
    [InlineData("fused", true)]
    [InlineData("unfused", false)]
    public void GradientOfB_EqualsTheClosedForm(string path, bool fused)
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 3, Alpha = 6 }, bias: true);
        using var x0 = randn(6, 12, dtype: float64);
        var grads = Gradients(layer, x0, fused);
        // L = sum(y²), s = 2: dL/dB = 2 s · yᵀ · (x·Aᵀ), y from the closed form
        using var y = ClosedForm(x0, BaseOf(layer).weight!, BaseOf(layer).bias, layer.LoraA("default"), layer.LoraB("default"), 2.0);
        TensorAssert.Close(grads[2], 2 * 2.0 * y.t().matmul(x0.matmul(layer.LoraA("default").detach().t())), 1e-10, $"{path}: dB closed form");
    }

    [Theory]
    [InlineData("fused", true)]
    [InlineData("unfused", false)]
    public void GradientOfA_EqualsTheClosedForm(string path, bool fused)
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 3, Alpha = 6 }, bias: true);
        using var x0 = randn(6, 12, dtype: float64);
        var grads = Gradients(layer, x0, fused);
        // L = sum(y²), s = 2: dL/dA = 2 s · Bᵀ · yᵀ · x
        using var y = ClosedForm(x0, BaseOf(layer).weight!, BaseOf(layer).bias, layer.LoraA("default"), layer.LoraB("default"), 2.0);
        TensorAssert.Close(grads[1], 2 * 2.0 * layer.LoraB("default").detach().t().matmul(y.t()).matmul(x0), 1e-10, $"{path}: dA closed form");
    }

    /// <summary>A base the library cannot see into: a Sequential holding a Linear, described by hand.</summary>
    private sealed class OpaqueBase(Sequential opaque, Linear inner) : LinearBaseDescriptor(opaque, 6, 4)
    {
        public override ScalarType WeightDtype => inner.weight!.dtype;
        public override Device Device => inner.weight!.device;
        public override bool WeightIsCopy => true;
        public override Tensor ReadWeight() => inner.weight!.detach().clone();
        public override Tensor? Bias => null;
        public override void AddToWeight(Tensor delta) { using (no_grad()) inner.weight!.add_(delta); }
    }

    [Fact]
    public void ACustomLinearDescriptor_IsMergedThroughIt()
    {
        var inner = nn.Linear(6, 4, hasBias: false, dtype: float64);
        var opaque = nn.Sequential(("inner", (nn.Module<Tensor, Tensor>)inner));
        using var w0 = inner.weight!.detach().clone();
        using var layer = new LoraLinear(new OpaqueBase(opaque, inner), new LoraOptions { Rank = 2, Alpha = 2, Init = LoraInit.Gaussian });
        using (no_grad()) layer.LoraB("default").normal_();
        layer.Merge();
        TensorAssert.Close(inner.weight!, w0 + layer.LoraB("default").matmul(layer.LoraA("default")), 1e-12, "W + s·B·A through the descriptor");
    }

    [Fact]
    public void ACustomLinearDescriptor_RunsTheFusedForward()
    {
        var inner = nn.Linear(6, 4, hasBias: false, dtype: float64);
        var opaque = nn.Sequential(("inner", (nn.Module<Tensor, Tensor>)inner));
        using var layer = new LoraLinear(new OpaqueBase(opaque, inner), new LoraOptions { Rank = 2, Alpha = 2, Init = LoraInit.Gaussian });
        using (no_grad()) layer.LoraB("default").normal_();
        using var x = randn(3, 6, dtype: float64);
        TensorAssert.Close(layer.call(x), ClosedForm(x, inner.weight!, null, layer.LoraA("default"), layer.LoraB("default"), 1), 1e-12, "opaque base");
    }

    [Fact]
    public void Options_RejectANonPositiveRank_NamingTheParameterAndValue()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LoraOptions { Rank = 0 });
        Assert.Equal("Rank", e.ParamName);
        Assert.Contains("got 0", e.Message);
    }

    [Theory]
    [InlineData("negative", -0.1)]
    [InlineData("one drops everything", 1.0)]
    [InlineData("above one", 1.5)]
    [InlineData("NaN", double.NaN)]
    public void Options_RejectADropoutOutsideZeroToOne(string why, double dropout)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LoraOptions { Dropout = dropout });
        Assert.Equal("Dropout", e.ParamName);
        Assert.True(e.Message.Contains("[0, 1)", StringComparison.Ordinal), why);
    }

    [Fact]
    public void Options_RejectAnInvalidRegex_NamingTheParameter()
    {
        var e = Assert.Throws<ArgumentException>(() => new LoraOptions { TargetRegex = "(" });
        Assert.Equal("TargetRegex", e.ParamName);
    }
}

[Trait(Category.Name, Category.Lora)]
[Collection(GlobalRngCollection.Name)]
public sealed class LoraLinearLifetimeTests
{
    private static long LiveTensors() => TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;

    public static TheoryData<string> StepKinds => new()
    {
        "linear, fused", "linear, unfused", "linear over bfloat16 (float32 adapters)", "embedding with a padding idx",
    };

    private static (LoraLayer Layer, Tensor Input) StepCase(string kind) => kind switch
    {
        "linear, fused" => (LoraLinear.Wrap(nn.Linear(32, 24), new LoraOptions { Rank = 4 }), randn(6, 32).requires_grad_(true)),
        "linear, unfused" => (new LoraLinear(LinearBaseDescriptor.Of(nn.Linear(32, 24)), new LoraOptions { Rank = 4 }) { FusedForward = false }, randn(6, 32).requires_grad_(true)),
        "linear over bfloat16 (float32 adapters)" => (LoraLinear.Wrap(nn.Linear(32, 24, dtype: ScalarType.BFloat16), new LoraOptions { Rank = 4 }), randn(6, 32).to(ScalarType.BFloat16).requires_grad_(true)),
        _ => (new LoraEmbedding(nn.Embedding(16, 8), new LoraOptions { Rank = 4 }, paddingIdx: 3), tensor(new long[] { 0, 3, 5, 3 })),
    };

    [Theory]
    [MemberData(nameof(StepKinds))]
    public void TrainingSteps_LeaveNoLiveTensorsBehind(string kind)
    {
        var (layer, x) = StepCase(kind);
        using var _ = layer;
        using var __ = x;
        void Step()
        {
            using var scope = NewDisposeScope();
            var y = layer.call(x);
            y.to(ScalarType.Float32).sum().backward();
        }
        Step(); // warm-up: parameters' .grad tensors are created once
        long before = LiveTensors();
        for (int i = 0; i < 5; i++) Step();
        Assert.True(before == LiveTensors(), $"{kind}: {LiveTensors() - before} tensors left alive by 5 steps");
    }

    [Fact]
    public void AnEmbeddingForwardOutsideADisposeScope_LeavesOnlyItsResult()
    {
        using var layer = new LoraEmbedding(nn.Embedding(16, 8), new LoraOptions { Rank = 4 });
        using var ids = tensor(new long[] { 0, 3, 5 });
        using var noGrad = no_grad();
        long before = LiveTensors();
        using (var y = layer.call(ids)) Assert.Equal(before + 1, LiveTensors());
    }

    public static TheoryData<string, bool, LoraInit> LayerKinds()
    {
        var data = new TheoryData<string, bool, LoraInit>();
        foreach (bool embedding in new[] { false, true })
            foreach (var init in Enum.GetValues<LoraInit>())
                data.Add($"{(embedding ? "embedding" : "linear")}, {init}", embedding, init);
        return data;
    }

    [Theory]
    [MemberData(nameof(LayerKinds))]
    public void ConstructAndDispose_LeavesNoLiveTensorBehind(string kind, bool embedding, LoraInit init)
    {
        var options = new LoraOptions { Rank = 4, Alpha = 8, Init = init };
        long before = LiveTensors();
        using (nn.Module layer = embedding
                   ? new LoraEmbedding(nn.Embedding(16, 8), options)
                   : LoraLinear.Wrap(nn.Linear(32, 24), options))
        {
            Assert.True(LiveTensors() > before, kind);
        }
        Assert.Equal(before, LiveTensors());
    }
}
