using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Tests.Lora;
using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

[Trait(Category.Name, Category.Quantization)]
[Trait(Category.Name, Category.Lora)]
public sealed class QLoraTests
{
    private static readonly LoraOptions Options = new() { Rank = 4, Alpha = 8, Init = LoraInit.Gaussian, TargetModules = [LoraOptions.AllLinear] };

    // peft's inits leave B at zero; give it values so the adapter term is exercised.
    private static LoraLinear WithNonZeroB(LoraLinear layer)
    {
        using var noGrad = no_grad();
        layer.LoraB(layer.ActiveAdapter).normal_(0, 0.5);
        return layer;
    }

    // Reference: y = x (Wdq + s B A)^T + bias, in float64 from the layer's own dequantized weight and adapter.
    private static Tensor Reference(Tensor x, Tensor wdq, LoraLinear l, Tensor? bias)
    {
        var a = l.LoraA(l.ActiveAdapter).detach().to(float64);
        var b = l.LoraB(l.ActiveAdapter).detach().to(float64);
        var w = wdq.to(float64) + b.matmul(a) * l.GetOptions(l.ActiveAdapter).Scaling;
        var y = x.to(float64).matmul(w.t());
        return bias is null ? y : y + bias.to(float64);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, false)]
    public void Forward_AndInputGradient_EqualAFloatLinearOverTheDequantizedWeightPlusLora(bool fused, bool hasBias)
    {
        manual_seed(11);
        using var linear = nn.Linear(96, 40, hasBias: hasBias);
        using var l4 = Linear4Bit.FromLinear(linear, QuantType.Nf4, blockSize: 64, doubleQuant: true);
        using var qlora = WithNonZeroB(QLora.Wrap(l4, Options));
        qlora.FusedForward = fused;
        using var wdq = l4.DequantizeWeight();

        using var x = randn(3, 5, 96).requires_grad_(true);
        using var y = qlora.call(x);
        using var xr = x.detach().to(float64).requires_grad_(true);
        using var yr = Reference(xr, wdq, qlora, hasBias ? linear.bias!.detach() : null);
        TensorAssert.Close(y, yr, 1e-5, "QLoRA forward");

        using var g = randn(3, 5, 40);
        y.backward(new[] { g });
        yr.backward(new[] { g.to(float64) });
        TensorAssert.Close(x.grad!, xr.grad!, 1e-5, "QLoRA input gradient");
        Assert.Null(l4.parameters().FirstOrDefault(p => p.requires_grad));
        Assert.NotNull(qlora.LoraA(qlora.ActiveAdapter).grad);
        Assert.NotNull(qlora.LoraB(qlora.ActiveAdapter).grad);
    }

    [Fact]
    public void WrapAndDispose_LeavesNoLiveTensorBehind()
    {
        using var linear = nn.Linear(64, 32, hasBias: false);
        long before = TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        using (var qlora = QLora.Wrap(Linear4Bit.FromLinear(linear), Options)) { } // the wrapper owns and disposes its base
        Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Inject_AllLinear_WrapsTheQuantizedLinearsButNotTheHead()
    {
        manual_seed(3);
        using var model = new TinyModel(vocab: 32, dim: 64, nLayers: 2);
        var q = ModelQuantizer.Quantize(model, new QuantizationOptions());
        Assert.Equal(6, q.QuantizedModules.Count);
        var report = QLora.Inject(model, Options);
        Assert.Equal(q.QuantizedModules.OrderBy(n => n), report.WrappedModules.OrderBy(n => n));
        Assert.DoesNotContain("lm_head", report.WrappedModules);
        Assert.All(LoraInjector.Layers(model), l => Assert.IsType<Linear4Bit>(((LoraLinear)l.Layer).BaseLayer));
    }

    [Fact]
    public void Merge_RequantizesWithinHalfACodeGapOfTheExactSum()
    {
        manual_seed(5);
        using var linear = nn.Linear(128, 64, hasBias: false);
        using var l4 = Linear4Bit.FromLinear(linear, QuantType.Nf4, blockSize: 64, doubleQuant: false);
        using var qlora = WithNonZeroB(QLora.Wrap(l4, Options));
        using var before = l4.DequantizeWeight();
        using var delta = qlora.DeltaWeight();
        Assert.True(delta.abs().max().item<float>() > 0.1f, "the adapter must change the weight for the merge check to mean anything");
        using var exact = before + delta;
        qlora.Merge();
        Assert.True(qlora.Merged);
        using var after = l4.DequantizeWeight();
        // Nearest-code rounding errs by at most half the widest gap between neighbouring NF4 codes, in units of the
        // block's absmax (blocks of 64 over the row-major weight).
        float[] codes = Codebooks.Nf4.OrderBy(c => c).ToArray();
        double halfGap = codes.Zip(codes.Skip(1), (lo, hi) => hi - lo).Max() / 2 + 1e-6;
        using var absmax = exact.reshape(-1, 64).abs().amax(new long[] { 1 }, keepdim: true);
        double worst = ((after - exact).reshape(-1, 64).abs() / absmax).max().item<float>();
        Assert.True(worst <= halfGap, $"merge error {worst:F4} of the block absmax exceeds half the widest NF4 gap ({halfGap:F4})");
        Assert.Throws<InvalidOperationException>(() => qlora.Merge());
    }
}
