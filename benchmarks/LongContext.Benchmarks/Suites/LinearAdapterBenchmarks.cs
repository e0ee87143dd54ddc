using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Baselines;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Lora;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// Shared setup of the LoRA and QLoRA linear suites: x (T, F) (requiring a gradient for forward+backward), an output
/// gradient, a frozen F x F linear and peft-style rank-r adapters over it, all seeded random (B non-zero).
/// </summary>
public abstract class LinearAdapterBenchmarks : BenchmarkBase
{
    /// <summary>Input (T, F).</summary>
    protected Tensor x = null!;
    /// <summary>Output gradient (T, F).</summary>
    protected Tensor gradOut = null!;
    /// <summary>The frozen base linear (the suites' baseline).</summary>
    protected Linear frozen = null!;
    /// <summary>peft's eager formulation over <see cref="frozen"/>.</summary>
    protected PeftStyleLora adapters = null!;

    /// <summary>Forward, or forward+backward.</summary>
    [ParamsAllValues]
    public Pass Pass { get; set; }

    /// <summary>Creates the input, gradient, frozen linear and adapters.</summary>
    protected void SetupLinearAndAdapters()
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
        adapters = new PeftStyleLora(frozen, a, b, (double)LinearShapes.Alpha / r);
    }

    /// <summary>The suites' adapter options (r = 16, alpha = 32).</summary>
    public static LoraOptions Options => new() { Rank = LinearShapes.Rank, Alpha = LinearShapes.Alpha };

    /// <summary>Copies the peft-style A and B into the library layer's default adapter, so both compute the same thing.</summary>
    public static LoraLinear WithAdaptersOf(LoraLinear lora, Linear a, Linear b)
    {
        using var noGrad = no_grad();
        lora.LoraA("default").copy_(a.weight!);
        lora.LoraB("default").copy_(b.weight!);
        return lora;
    }
}
