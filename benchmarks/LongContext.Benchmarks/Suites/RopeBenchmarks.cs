using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Baselines;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Rope;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// Rotary embedding applied to q and k of shape (1, 32, N, 128), linear position interpolation factor 4: the HF eager
/// rotate_half recipe (baseline) against the library's RotaryEmbedding.Apply. Memory-bound: the minimal traffic is
/// reading q and k, writing both results, and reading cos and sin (N x D each) in the compute dtype.
/// </summary>
public class RopeBenchmarks : BenchmarkBase, IWorkload
{
    private RotaryEmbedding rotary = null!;
    private Tensor q = null!, k = null!, positions = null!, cosCache = null!, sinCache = null!;

    /// <summary>Sequence length: 2048 on CPU, 16384 on CUDA (the anchor's shape).</summary>
    [ParamsSource(nameof(Lengths))]
    public int N { get; set; }

    /// <summary>Lengths by device.</summary>
    public static IEnumerable<int> Lengths => BenchSettings.Pick([32], [2048], [16384]);

    /// <summary>Heads (32; 4 in smoke mode).</summary>
    public static int Heads => BenchSettings.Pick(4, 32, 32);

    /// <summary>Head dimension (128; 16 in smoke mode).</summary>
    public static int HeadDim => BenchSettings.Pick(16, 128, 128);

    /// <summary>Linear position interpolation factor.</summary>
    public const double Factor = 4;

    /// <summary>Random q and k, positions 0..N-1, caches.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Seed();
        q = Randn([1, Heads, N, HeadDim]);
        k = Randn([1, Heads, N, HeadDim]);
        positions = Make(() => arange(N, ScalarType.Int64, Device).unsqueeze(0));
        (cosCache, sinCache) = EagerRope.Caches(HeadDim, N, 10000, Factor, Device);
        Keep(cosCache);
        Keep(sinCache);
        rotary = Keep(new RotaryEmbedding(new RotaryEmbeddingOptions(HeadDim, N, RopeParameters.Linear(Factor))));
        using (var warm = NewDisposeScope()) rotary.Apply(q, k, positions); // builds the per-device cos/sin tables
    }


    /// <summary>Frees the inputs.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <summary>HF eager recipe: gather cos/sin, x*cos + rotate_half(x)*sin for q and k.</summary>
    [Benchmark(Baseline = true)]
    public void RotateHalfEager() => Measure(Pass.Forward, () => EagerRope.Apply(q, k, positions, cosCache, sinCache).Q, null, []);

    /// <summary>The library: RotaryEmbedding.Apply(q, k, positionIds).</summary>
    [Benchmark]
    public void Library() => Measure(Pass.Forward, () => rotary.Apply(q, k, positions).Q, null, []);

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod)
    {
        double elem = BenchSettings.ElementSize, x = (double)Heads * N * HeadDim;
        return new Work(0, 2 * 2 * x * elem + 2.0 * N * HeadDim * elem);
    }
}
