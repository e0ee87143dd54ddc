using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Baselines;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Lora;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// A LoRA linear (r=16, alpha=32) over a frozen F x F weight against the frozen linear alone (baseline), x (T, F):
/// peft's eager formulation and the library's LoraLinear. Forward+backward computes the input gradient and, for the
/// adapters, the gradients of A and B; the base weight never gets one.
/// </summary>
public class LoraBenchmarks : LinearAdapterBenchmarks, IWorkload
{
    private LoraLinear library = null!;

    /// <summary>Random input, weights (no zero LoRA B) and output gradient.</summary>
    [GlobalSetup]
    public void Setup()
    {
        SetupLinearAndAdapters();
        library = Keep(LibraryLora(frozen, adapters.A, adapters.B, Device, DType));
    }

    /// <summary>Frees tensors and modules.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <summary>The frozen linear alone.</summary>
    [Benchmark(Baseline = true)]
    public void FrozenLinear() => Measure(Pass, () => frozen.forward(x), gradOut, [x]);

    /// <summary>peft: base(x) + B(A(x)) * s.</summary>
    [Benchmark]
    public void PeftStyle() => Measure(Pass, () => adapters.Forward(x), gradOut, [x, adapters.A.weight!, adapters.B.weight!]);

    /// <summary>The library's LoraLinear.Wrap over a copy of the same frozen linear, same A and B.</summary>
    [Benchmark]
    public void Library() => Measure(Pass, () => library.forward(x), gradOut, [x, library.LoraA("default"), library.LoraB("default")]);

    /// <summary>LoraLinear.Wrap over a copy of <paramref name="frozen"/> with A and B copied from the peft-style modules.</summary>
    public static LoraLinear LibraryLora(Linear frozen, Linear a, Linear b, Device device, ScalarType dtype)
    {
        Linear copy = nn.Linear(frozen.weight!.shape[1], frozen.weight.shape[0], hasBias: false, device: device, dtype: dtype);
        using (var noGrad = no_grad()) copy.weight!.copy_(frozen.weight);
        copy.weight!.requires_grad_(false);
        return WithAdaptersOf(LoraLinear.Wrap(copy, Options), a, b);
    }

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod) => new(LinearShapes.Flops(Pass, benchmarkMethod != nameof(FrozenLinear)), 0);
}
