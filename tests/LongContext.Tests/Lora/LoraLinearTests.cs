using LongContext.Lora;
using LongContext.Tests.Support;
using TorchSharp;
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

    /// <summary>x·Wᵀ + b + s·x·Aᵀ·Bᵀ computed element by element in float64.</summary>
    private static Tensor ClosedForm(Tensor x, Tensor w, Tensor? b, Tensor a, Tensor bm, double s)
    {
        double[] X = x.data<double>().ToArray(), W = w.data<double>().ToArray(), A = a.data<double>().ToArray(), B = bm.data<double>().ToArray();
        double[]? bias = b?.data<double>().ToArray();
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

    public static TheoryData<bool, bool, bool> Variants => new()
    {
        { true, true, false }, { false, true, false }, { true, false, true }, { false, false, true },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Forward_EqualsClosedForm_InFloat64(bool fused, bool bias, bool rsLora)
    {
        var options = new LoraOptions { Rank = 3, Alpha = 6, UseRsLora = rsLora, Init = LoraInit.Gaussian };
        using var layer = MakeLayer(options, bias);
        layer.FusedForward = fused;
        var lin = (TorchSharp.Modules.Linear)layer.BaseLayer;
        using var x = randn(5, 12, dtype: float64);
        using var y = layer.call(x);
        double s = rsLora ? 6 / Math.Sqrt(3) : 2;
        Assert.Equal(s, options.Scaling);
        TensorAssert.Close(y, ClosedForm(x, lin.weight!, lin.bias, layer.LoraA("default"), layer.LoraB("default"), s), 1e-12, "LoRA linear");
    }

    [Fact]
    public void Forward_On3DInput_KeepsLeadingDimensions()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: true);
        using var x = randn(2, 3, 12, dtype: float64);
        using var y = layer.call(x);
        Assert.Equal(new long[] { 2, 3, 10 }, y.shape);
        var lin = (TorchSharp.Modules.Linear)layer.BaseLayer;
        TensorAssert.Close(y.reshape(6, 10), ClosedForm(x.reshape(6, 12), lin.weight!, lin.bias, layer.LoraA("default"), layer.LoraB("default"), 4), 1e-12, "3-D input");
    }

    [Fact]
    public void Dropout_InEvalMode_IsTheIdentity_AndInTrainingChangesTheBranchOnly()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2, Dropout = 0.5 }, bias: false);
        var lin = (TorchSharp.Modules.Linear)layer.BaseLayer;
        using var x = randn(64, 12, dtype: float64);
        layer.eval();
        TensorAssert.Close(layer.call(x), ClosedForm(x, lin.weight!, null, layer.LoraA("default"), layer.LoraB("default"), 4), 1e-12, "eval");
        layer.train();
        using var y = layer.call(x);
        double diff = (y - ClosedForm(x, lin.weight!, null, layer.LoraA("default"), layer.LoraB("default"), 4)).abs().max().item<double>();
        Assert.True(diff > 1e-6, "dropout in training must change the LoRA branch");
    }

    [Fact]
    public void DefaultInit_IsKaimingUniformA_AndZeroB_SoTheLayerStartsAsTheBase()
    {
        manual_seed(3);
        var lin = nn.Linear(100, 20, hasBias: false, dtype: float64);
        using var layer = LoraLinear.Wrap(lin, new LoraOptions { Rank = 16 });
        using var x = randn(4, 100, dtype: float64);
        TensorAssert.Close(layer.call(x), lin.call(x), 1e-12, "identity at init");
        Assert.Equal(0, layer.LoraB("default").abs().max().item<double>());
        // kaiming_uniform(a=sqrt(5)) on (16, 100): bound = sqrt(6 / ((1 + 5) * 100)) = 0.1
        double max = layer.LoraA("default").abs().max().item<double>();
        Assert.InRange(max, 0.09, 0.1);
    }

    [Fact]
    public void MergeThenUnmerge_MatchesForwardAndRestoresTheWeight()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 4, Alpha = 16 }, bias: true, ScalarType.Float32);
        var lin = (TorchSharp.Modules.Linear)layer.BaseLayer;
        using var w0 = lin.weight!.detach().clone();
        using var x = randn(7, 12);
        using var unmerged = layer.call(x);
        layer.Merge();
        Assert.True(layer.Merged);
        TensorAssert.Close(lin.weight!, w0 + layer.DeltaWeight(), 1e-6, "merged weight = W + s·B·A");
        TensorAssert.Close(layer.call(x), unmerged, 1e-5, "merged forward");
        var again = Assert.Throws<InvalidOperationException>(layer.Merge);
        Assert.Contains("already merged", again.Message);
        layer.Unmerge();
        Assert.False(layer.Merged);
        TensorAssert.Close(lin.weight!, w0, 1e-6, "unmerged weight");
        Assert.Throws<InvalidOperationException>(layer.Unmerge);
    }

    [Fact]
    public void DisabledAdapter_GivesTheBaseOutput_AndCannotToggleWhileMerged()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: true);
        using var x = randn(3, 12, dtype: float64);
        layer.AdapterEnabled = false;
        TensorAssert.Close(layer.call(x), layer.BaseLayer.call(x), 0, "disabled");
        layer.AdapterEnabled = true;
        layer.Merge();
        Assert.Throws<InvalidOperationException>(() => layer.AdapterEnabled = false);
    }

    [Fact]
    public void SeveralAdapters_OnlyTheActiveOneAppliesAndTrains()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 2 }, bias: false);
        layer.AddAdapter("second", new LoraOptions { Rank = 5, Alpha = 5, Init = LoraInit.Gaussian });
        using (no_grad()) layer.LoraB("second").normal_();
        Assert.Equal(new[] { "default", "second" }, layer.AdapterNames);
        Assert.Equal("default", layer.ActiveAdapter);
        var lin = (TorchSharp.Modules.Linear)layer.BaseLayer;
        using var x = randn(3, 12, dtype: float64);
        layer.SetActiveAdapter("second");
        TensorAssert.Close(layer.call(x), ClosedForm(x, lin.weight!, null, layer.LoraA("second"), layer.LoraB("second"), 1), 1e-12, "second adapter");
        Assert.True(layer.LoraA("second").requires_grad);
        Assert.False(layer.LoraA("default").requires_grad);
        var e = Assert.Throws<ArgumentException>(() => layer.SetActiveAdapter("missing"));
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void Gradients_FusedEqualsUnfused_AndReachOnlyAandB()
    {
        using var layer = MakeLayer(new LoraOptions { Rank = 3, Alpha = 3 }, bias: true);
        var lin = (TorchSharp.Modules.Linear)layer.BaseLayer;
        using var x0 = randn(6, 12, dtype: float64);
        var grads = new List<Tensor[]>();
        foreach (bool fused in new[] { true, false })
        {
            layer.FusedForward = fused;
            layer.zero_grad();
            using var x = x0.clone().requires_grad_();
            using var y = layer.call(x);
            using var loss = (y * y).sum();
            loss.backward();
            Assert.False(lin.weight!.requires_grad);
            Assert.Null(lin.weight!.grad);
            Assert.Null(lin.bias!.grad);
            grads.Add([x.grad!.clone(), layer.LoraA("default").grad!.clone(), layer.LoraB("default").grad!.clone()]);
        }
        for (int i = 0; i < 3; i++) TensorAssert.Close(grads[0][i], grads[1][i], 1e-10, $"gradient {i}");
        // closed form for dL/dB with L = sum(y²): 2 · s · yᵀ · (x·Aᵀ)
        using var yRef = layer.call(x0);
        var a = layer.LoraA("default");
        TensorAssert.Close(grads[0][2], 2 * yRef.t().matmul(x0.matmul(a.t())), 1e-10, "dB closed form");
    }

    [Fact]
    public void BaseWeightAccess_MergesAnOpaqueBase()
    {
        manual_seed(1);
        var inner = nn.Linear(6, 4, hasBias: false, dtype: float64);
        var opaque = nn.Sequential(("inner", (nn.Module<Tensor, Tensor>)inner));
        var access = new LoraBaseWeight(() => inner.weight!.detach(), w => { using (no_grad()) inner.weight!.copy_(w); });
        using var layer = new LoraLinear(opaque, 6, 4, new LoraOptions { Rank = 2, Init = LoraInit.Gaussian }, access);
        using (no_grad()) layer.LoraB("default").normal_();
        using var x = randn(3, 6, dtype: float64);
        using var before = layer.call(x);
        layer.Merge();
        TensorAssert.Close(layer.call(x), before, 1e-12, "merged opaque base");
    }

    [Fact]
    public void Options_RejectNonPositiveRank_NamingTheParameterAndValue()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LoraOptions { Rank = 0 });
        Assert.Equal("Rank", e.ParamName);
        Assert.Contains("got 0", e.Message);
        var d = Assert.Throws<ArgumentOutOfRangeException>(() => new LoraOptions { Dropout = 1.5 });
        Assert.Equal("Dropout", d.ParamName);
        Assert.Contains("1.5", d.Message);
        var r = Assert.Throws<ArgumentException>(() => new LoraOptions { TargetRegex = "(" });
        Assert.Equal("TargetRegex", r.ParamName);
    }
}

[Trait(Category.Name, Category.Lora)]
[Collection(GlobalRngCollection.Name)]
public sealed class LoraLinearLifetimeTests
{
    private static long LiveTensors() => TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TrainingSteps_LeaveNoLiveTensorsBehind(bool fused)
    {
        using var layer = LongContext.Lora.LoraLinear.Wrap(TorchSharp.torch.nn.Linear(32, 24), new LongContext.Lora.LoraOptions { Rank = 4, Alpha = 8 });
        layer.FusedForward = fused;
        using var x = TorchSharp.torch.randn(6, 32).requires_grad_(true);
        void Step()
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var y = layer.call(x);
            y.sum().backward();
        }
        Step(); // warm-up: parameters' .grad tensors are created once
        long before = LiveTensors();
        for (int i = 0; i < 5; i++) Step();
        Assert.Equal(before, LiveTensors());
    }

    public static TheoryData<bool, LongContext.Lora.LoraInit> LayerKinds()
    {
        var data = new TheoryData<bool, LongContext.Lora.LoraInit>();
        foreach (bool embedding in new[] { false, true })
            foreach (var init in Enum.GetValues<LongContext.Lora.LoraInit>())
                data.Add(embedding, init);
        return data;
    }

    [Theory]
    [MemberData(nameof(LayerKinds))]
    public void ConstructAndDispose_LeavesNoLiveTensorBehind(bool embedding, LongContext.Lora.LoraInit init)
    {
        var options = new LongContext.Lora.LoraOptions { Rank = 4, Alpha = 8, Init = init };
        long before = LiveTensors();
        using (TorchSharp.torch.nn.Module layer = embedding
                   ? new LongContext.Lora.LoraEmbedding(TorchSharp.torch.nn.Embedding(16, 8), options)
                   : LongContext.Lora.LoraLinear.Wrap(TorchSharp.torch.nn.Linear(32, 24), options))
        {
            Assert.True(LiveTensors() > before);
        }
        Assert.Equal(before, LiveTensors());
    }
}
