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
public class LoraBenchmarks : BenchmarkBase, IWorkload
{
    private Tensor x = null!, gradOut = null!;
    private Linear frozen = null!;
    private PeftStyleLora peft = null!;
    private LoraLinear library = null!;

    /// <summary>Forward, or forward+backward.</summary>
    [ParamsAllValues]
    public Pass Pass { get; set; }

    /// <summary>Random input, weights (no zero LoRA B) and output gradient.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Seed();
        int t = LinearShapes.Tokens, f = LinearShapes.Features, r = LinearShapes.Rank;
        x = Randn([t, f], requiresGrad: Pass == Pass.ForwardBackward);
        gradOut = Randn([t, f]);
        frozen = Keep(nn.Linear(f, f, hasBias: false, device: Device, dtype: DType));
        RandomizeParameters(frozen, 1.0 / Math.Sqrt(f));
        frozen.weight!.requires_grad_(false);
        Linear a = Keep(nn.Linear(f, r, hasBias: false, device: Device, dtype: DType));
        Linear b = Keep(nn.Linear(r, f, hasBias: false, device: Device, dtype: DType));
        RandomizeParameters(a, 1.0 / Math.Sqrt(f));
        RandomizeParameters(b, 1.0 / Math.Sqrt(r));
        peft = new PeftStyleLora(frozen, a, b, (double)LinearShapes.Alpha / r);
        library = Keep(LibraryLora(frozen, a, b, Device, DType));
    }

    /// <summary>Frees tensors and modules.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <summary>The frozen linear alone.</summary>
    [Benchmark(Baseline = true)]
    public void FrozenLinear() => Measure(Pass, () => frozen.forward(x), gradOut, [x]);

    /// <summary>peft: base(x) + B(A(x)) * s.</summary>
    [Benchmark]
    public void PeftStyle() => Measure(Pass, () => peft.Forward(x), gradOut, [x, peft.A.weight!, peft.B.weight!]);

    /// <summary>The library's LoraLinear.Wrap over a copy of the same frozen linear, same A and B.</summary>
    [Benchmark]
    public void Library() => Measure(Pass, () => library.forward(x), gradOut, [x, library.LoraA("default"), library.LoraB("default")]);

    /// <summary>LoraLinear.Wrap over a copy of <paramref name="frozen"/> with A and B copied from the peft-style modules.</summary>
    public static LoraLinear LibraryLora(Linear frozen, Linear a, Linear b, Device device, ScalarType dtype)
    {
        Linear copy = nn.Linear(frozen.weight!.shape[1], frozen.weight.shape[0], hasBias: false, device: device, dtype: dtype);
        using (var noGrad = no_grad()) copy.weight!.copy_(frozen.weight);
        copy.weight!.requires_grad_(false);
        LoraLinear lora = LoraLinear.Wrap(copy, new LoraOptions { Rank = LinearShapes.Rank, Alpha = LinearShapes.Alpha });
        using (var noGrad = no_grad())
        {
            lora.LoraA("default").copy_(a.weight!);
            lora.LoraB("default").copy_(b.weight!);
        }
        return lora;
    }

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod) => new(LinearShapes.Flops(Pass, benchmarkMethod != nameof(FrozenLinear)), 0);
}
