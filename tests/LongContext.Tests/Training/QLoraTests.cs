using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Tests.Lora;
using LongContext.Tests.Quantization;
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

    /// <summary>y = x (W + s B A)^T + bias in float64, W decoded by <see cref="Nf4Reference.Weight"/>.</summary>
    private static Tensor Reference(Tensor x, Linear4Bit l4, LoraLinear l, Tensor? bias)
    {
        var a = l.LoraA(l.ActiveAdapter).detach().to(float64);
        var b = l.LoraB(l.ActiveAdapter).detach().to(float64);
        var w = Nf4Reference.Weight(l4) + b.matmul(a) * l.GetOptions(l.ActiveAdapter).Scaling;
        var y = x.to(float64).matmul(w.t());
        return bias is null ? y : y + bias.to(float64);
    }

    public static TheoryData<string, bool, bool, bool> Variants => new()
    {
        { "fused, with bias, double quantization", true, true, true },
        { "fused, no bias, double quantization", true, false, true },
        { "unfused, no bias, single quantization", false, false, false },
    };

    private static (Linear Linear, Linear4Bit Base, LoraLinear Layer) Make(bool fused, bool hasBias, bool doubleQuant)
    {
        manual_seed(11);
        var linear = nn.Linear(96, 40, hasBias: hasBias);
        var l4 = Linear4Bit.FromLinear(linear, QuantType.Nf4, blockSize: 64, doubleQuant: doubleQuant);
        var qlora = WithNonZeroB(QLora.Wrap(l4, Options));
        qlora.FusedForward = fused;
        return (linear, l4, qlora);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Forward_EqualsAFloat64LinearOverTheDecodedCodesPlusLora(string variant, bool fused, bool hasBias, bool doubleQuant)
    {
        var (linear, l4, qlora) = Make(fused, hasBias, doubleQuant);
        using (qlora)
        using (var x = randn(3, 5, 96))
            TensorAssert.Close(qlora.call(x), Reference(x, l4, qlora, hasBias ? linear.bias!.detach() : null), 1e-5, variant);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void InputGradient_EqualsTheFloat64Reference(string variant, bool fused, bool hasBias, bool doubleQuant)
    {
        var (linear, l4, qlora) = Make(fused, hasBias, doubleQuant);
        using var _ = qlora;
        using var x = randn(3, 5, 96).requires_grad_(true);
        using var xr = x.detach().to(float64).requires_grad_(true);
        using var g = randn(3, 5, 40);
        qlora.call(x).backward(new[] { g });
        Reference(xr, l4, qlora, hasBias ? linear.bias!.detach() : null).backward(new[] { g.to(float64) });
        TensorAssert.Close(x.grad!, xr.grad!, 1e-5, variant);
    }

    /// <summary>
    /// dL/dA and dL/dB for L = sum(y * g) against float64 autograd through <see cref="Reference"/> with A and B as leaves
    /// (dB = s gᵀ (x Aᵀ), dA = s Bᵀ gᵀ x). Tolerance 1e-5 of the largest reference entry: float32 sums over 15 rows.
    /// </summary>
    [Theory]
    [MemberData(nameof(Variants))]
    public void AdapterGradients_EqualTheFloat64Reference(string variant, bool fused, bool hasBias, bool doubleQuant)
    {
        var (linear, l4, qlora) = Make(fused, hasBias, doubleQuant);
        using var _ = qlora;
        using var x = randn(3, 5, 96);
        using var g = randn(3, 5, 40);
        qlora.call(x).backward(new[] { g });

        var a = qlora.LoraA(qlora.ActiveAdapter).detach().to(float64).requires_grad_(true);
        var b = qlora.LoraB(qlora.ActiveAdapter).detach().to(float64).requires_grad_(true);
        var w = Nf4Reference.Weight(l4) + b.matmul(a) * qlora.GetOptions(qlora.ActiveAdapter).Scaling;
        var y = x.to(float64).matmul(w.t());
        if (hasBias) y = y + linear.bias!.detach().to(float64);
        y.backward(new[] { g.to(float64) });
        foreach (var (name, actual, expected) in new[] { ("dA", qlora.LoraA(qlora.ActiveAdapter).grad!, a.grad!), ("dB", qlora.LoraB(qlora.ActiveAdapter).grad!, b.grad!) })
        {
            double scale = expected.abs().max().item<double>();
            Assert.True(scale > 1, $"{variant}: the reference {name} should not vanish");
            TensorAssert.Close(actual, expected, 1e-5 * scale, $"{variant}: {name}");
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Gradients_ReachTheAdaptersAndNotTheQuantizedBase(string variant, bool fused, bool hasBias, bool doubleQuant)
    {
        var (_, l4, qlora) = Make(fused, hasBias, doubleQuant);
        using var _ = qlora;
        using var x = randn(3, 96);
        qlora.call(x).sum().backward();
        Assert.True(l4.parameters().All(p => !p.requires_grad && p.grad is null), variant);
        Assert.NotNull(qlora.LoraA(qlora.ActiveAdapter).grad);
        Assert.NotNull(qlora.LoraB(qlora.ActiveAdapter).grad);
    }

    [Fact]
    public void AnInputOfTheWrongWidth_IsAnErrorStatingTheExpectedWidth()
    {
        var (_, _, qlora) = Make(fused: true, hasBias: false, doubleQuant: true);
        using var _ = qlora;
        using var x = randn(2, 95);
        var e = Assert.Throws<ArgumentException>(() => qlora.call(x));
        Assert.Contains("96", e.Message);
        Assert.Contains("[2, 95]", e.Message);
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
    public void Inject_AllLinear_WrapsExactlyTheQuantizedLinears()
    {
        manual_seed(3);
        using var model = new TinyModel(vocab: 32, dim: 64, nLayers: 2);
        var q = ModelQuantizer.Quantize(model, new QuantizationOptions());
        var report = QLora.Inject(model, Options);
        Assert.Equal(q.QuantizedModules.Order(StringComparer.Ordinal), report.WrappedModules.Order(StringComparer.Ordinal));
        Assert.All(LoraInjector.Layers(model), l => Assert.IsType<Linear4Bit>(l.Layer.BaseLayer));
    }

    [Fact]
    public void Merge_RequantizesWithinHalfACodeGapOfTheExactSum()
    {
        manual_seed(5);
        using var linear = nn.Linear(128, 64, hasBias: false);
        using var l4 = Linear4Bit.FromLinear(linear, QuantType.Nf4, blockSize: 64, doubleQuant: false);
        using var qlora = WithNonZeroB(QLora.Wrap(l4, Options));
        using var exact = Nf4Reference.Weight(l4) + qlora.DeltaWeight().to(float64);
        Assert.True((exact - Nf4Reference.Weight(l4)).abs().max().item<double>() > 0.1, "the adapter must change the weight for the merge check to mean anything");
        qlora.Merge();
        // Nearest-code rounding errs by at most half the widest gap between neighbouring NF4 codes, in units of the
        // block's absmax (blocks of 64 over the row-major weight).
        double halfGap = Nf4Reference.Table.Zip(Nf4Reference.Table.Skip(1), (lo, hi) => hi - lo).Max() / 2 + 1e-6;
        using var absmax = exact.reshape(-1, 64).abs().amax(new long[] { 1 }, keepdim: true);
        double worst = ((Nf4Reference.Weight(l4) - exact).reshape(-1, 64).abs() / absmax).max().item<double>();
        Assert.True(worst <= halfGap, $"merge error {worst:F4} of the block absmax exceeds half the widest NF4 gap ({halfGap:F4})");
    }

    private static LoraLinear BFloat16QLora()
    {
        manual_seed(13);
        using var linear = nn.Linear(64, 16, hasBias: false);
        return QLora.Wrap(Linear4Bit.FromLinear(linear, computeDtype: ScalarType.BFloat16), Options with { Init = LoraInit.KaimingUniform });
    }

    [Fact]
    public void Adapters_AreFloat32_OverABFloat16ComputeDtype()
    {
        using var qlora = BFloat16QLora();
        Assert.True(qlora.LoraA("default").dtype == ScalarType.Float32 && qlora.LoraB("default").dtype == ScalarType.Float32);
    }

    [Fact]
    public void BFloat16Training_Learns()
    {
        using var qlora = BFloat16QLora();
        manual_seed(14);
        using var x = randn(64, 64).to(ScalarType.BFloat16);
        // a change the rank-4 adapter can represent: the base output plus x · Mᵀ with M of rank 2
        using var m = randn(16, 2).matmul(randn(2, 64)).mul_(0.05);
        using var target = qlora.BaseLayer.call(x).to(ScalarType.Float32) + x.to(ScalarType.Float32).matmul(m.t());
        using var optimizer = optim.AdamW(qlora.parameters().Where(p => p.requires_grad), lr: 1e-2, weight_decay: 0);
        double Loss() { using var noGrad = no_grad(); return qlora.call(x).to(ScalarType.Float32).sub(target).pow(2).mean().item<float>(); }
        double before = Loss();
        for (int step = 0; step < 100; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            qlora.call(x).to(ScalarType.Float32).sub(target).pow(2).mean().backward();
            optimizer.step();
        }
        double after = Loss();
        Assert.True(after < 0.25 * before, $"loss {before:F4} -> {after:F4} after 100 steps");
    }
}
