using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Baselines;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// NF4 dequantization of a 4096 x 4096 weight, block size 64, with and without double quantization, into the compute
/// dtype. Memory-bound: minimal traffic is the packed codes (n/2 bytes), the absmax state (4 bytes per block, or 1 byte
/// per block + 4 per 256 blocks with double quantization) and the output (n elements).
/// </summary>
public class Nf4DequantizeBenchmarks : BenchmarkBase, IWorkload
{
    /// <summary>Quantization block size.</summary>
    public const int BlockSize = 64;

    private EagerNf4.State eager = null!;
    private QuantState4Bit library = null!;

    /// <summary>Double quantization of the absmax values.</summary>
    [ParamsAllValues]
    public bool DoubleQuant { get; set; }

    /// <summary>Rows and columns (4096; 128 in smoke mode).</summary>
    public static int Size => BenchSettings.Pick(128, 4096, 4096);

    /// <summary>Random packed state.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Seed();
        eager = Keep(EagerNf4.RandomState(Size, Size, BlockSize, DoubleQuant, Device));
        using (var scope = NewDisposeScope())
        {
            library = Keep(Blockwise4Bit.Quantize(randn([Size, Size], ScalarType.Float32, Device), QuantType.Nf4, BlockSize, DoubleQuant));
        }
    }

    /// <summary>Frees the state.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <summary>Eager shift/mask + table lookup + absmax multiply.</summary>
    [Benchmark(Baseline = true)]
    public void ShiftMaskEager() => Measure(Pass.Forward, () => EagerNf4.Dequantize(eager, DType), null, []);

    /// <summary>The library: Blockwise4Bit.Dequantize into the compute dtype.</summary>
    [Benchmark]
    public void Library() => Measure(Pass.Forward, () => Blockwise4Bit.Dequantize(library, DType), null, []);

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod)
    {
        double n = (double)Size * Size, blocks = n / BlockSize;
        double state = DoubleQuant ? blocks + 4 * blocks / EagerNf4.DoubleQuantBlock : 4 * blocks;
        return new Work(0, n / 2 + state + n * BenchSettings.ElementSize);
    }
}

/// <summary>
/// NF4 quantization of a 4096 x 4096 weight in the compute dtype, block size 64: the eager divide-and-argmin port
/// (baseline) vs the library's bitsandbytes-kernel quantizer (thresholds by <c>bucketize</c>, multiply by the
/// reciprocal), without and with double quantization. Minimal traffic: the input read once, the codes (n/2 bytes) and
/// the absmax state written once.
/// </summary>
public class Nf4QuantizeBenchmarks : BenchmarkBase, IWorkload
{
    private Tensor weight = null!;

    /// <summary>A random weight.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Seed();
        weight = Randn([Nf4DequantizeBenchmarks.Size, Nf4DequantizeBenchmarks.Size], 0.02);
    }

    /// <summary>Frees the weight.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <summary>Divide by absmax, argmin over the 16 code distances, pack.</summary>
    [Benchmark(Baseline = true)]
    public void EagerArgmin() => Measure(Pass.Forward, () => EagerNf4.QuantizeArgmin(weight, Nf4DequantizeBenchmarks.BlockSize).Packed, null, []);

    /// <summary>The library: Blockwise4Bit.Quantize, float32 absmax.</summary>
    [Benchmark]
    public void Library() => Measure(Pass.Forward, () => Quantized(doubleQuant: false), null, []);

    /// <summary>The library with double quantization of the absmax values.</summary>
    [Benchmark]
    public void LibraryDoubleQuant() => Measure(Pass.Forward, () => Quantized(doubleQuant: true), null, []);

    // The state owns its tensors outside the measuring scope: dispose it inside the invocation.
    private Tensor Quantized(bool doubleQuant)
    {
        using var state = Blockwise4Bit.Quantize(weight, QuantType.Nf4, Nf4DequantizeBenchmarks.BlockSize, doubleQuant);
        return weight;
    }

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod)
    {
        double n = (double)Nf4DequantizeBenchmarks.Size * Nf4DequantizeBenchmarks.Size, blocks = n / Nf4DequantizeBenchmarks.BlockSize;
        double state = benchmarkMethod == nameof(LibraryDoubleQuant) ? blocks + 4 * blocks / EagerNf4.DoubleQuantBlock : 4 * blocks;
        return new Work(0, n * BenchSettings.ElementSize + n / 2 + state);
    }
}

/// <summary>
/// A QLoRA linear (NF4 base, block 64, double quantization, LoRA r=16) against the dense frozen linear of the same
/// shape (baseline), x (T, F): the eager recipe (dequantize, linear, adapters) and the library's Linear4Bit under
/// LoraLinear. FLOPs counted as for the LoRA suite (the dequantization is not counted).
/// </summary>
public class QLoraLinearBenchmarks : LinearAdapterBenchmarks, IWorkload
{
    private EagerNf4.State nf4 = null!;
    private LoraLinear library = null!;

    /// <summary>Random input, weights and 4-bit state.</summary>
    [GlobalSetup]
    public void Setup()
    {
        SetupLinearAndAdapters();
        int f = LinearShapes.Features;
        nf4 = Keep(EagerNf4.RandomState(f, f, Nf4DequantizeBenchmarks.BlockSize, doubleQuant: true, Device));
        Linear4Bit base4 = Linear4Bit.FromLinear(frozen, QuantType.Nf4, Nf4DequantizeBenchmarks.BlockSize, doubleQuant: true, computeDtype: DType);
        library = Keep(WithAdaptersOf(QLora.Wrap(base4, Options), adapters.A, adapters.B));
    }

    /// <summary>Frees tensors and modules.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <summary>The dense frozen linear in the compute dtype.</summary>
    [Benchmark(Baseline = true)]
    public void DenseLinear() => Measure(Pass, () => frozen.forward(x), gradOut, [x]);

    /// <summary>Eager QLoRA: dequantize the NF4 weight, linear, plus B(A(x))*s.</summary>
    [Benchmark]
    public void QLoraEager() => Measure(Pass, () => adapters.Forward(x, EagerNf4.Dequantize(nf4, DType)), gradOut, [x, adapters.A.weight!, adapters.B.weight!]);

    /// <summary>The library: QLora.Wrap (LoraLinear over Linear4Bit with its dense-weight access; NF4, double quantization), same adapters.</summary>
    [Benchmark]
    public void Library() => Measure(Pass, () => library.forward(x), gradOut, [x, library.LoraA("default"), library.LoraB("default")]);

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod) => new(LinearShapes.Flops(Pass, benchmarkMethod != nameof(DenseLinear)), 0);
}
