using BenchmarkDotNet.Attributes;
using LongContext.Attention;
using LongContext.Benchmarks.Baselines;
using LongContext.Benchmarks.Infrastructure;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// Causal attention, B=1, (B,H,N,D) inputs: full attention (SDPA, the baseline) against shifted sparse attention with
/// group size N/4 (the LongLoRA roll recipe, the no-wrap recipe on views, and the library's versions of each), forward
/// and forward+backward, MHA and GQA. FLOPs (stated in BENCHMARKS.md): a causal group of L tokens costs 2*L^2*D per head
/// forward (half of 4*L^2*D), backward counts 2.5x forward, so forward+backward is 3.5x forward.
/// </summary>
public class AttentionBenchmarks : BenchmarkBase, IWorkload
{
    /// <summary>Group size ratio 1/4, as in LongLoRA.</summary>
    public const int GroupDivisor = 4;

    private Tensor q = null!, k = null!, v = null!, gradOut = null!;

    /// <summary>Sequence length.</summary>
    [ParamsSource(nameof(Lengths))]
    public int N { get; set; }

    /// <summary>Key/value heads: equal to <see cref="Heads"/> for MHA, fewer for GQA.</summary>
    [ParamsSource(nameof(KvHeadChoices))]
    public int KvHeads { get; set; }

    /// <summary>Forward, or forward+backward.</summary>
    [ParamsAllValues]
    public Pass Pass { get; set; }

    /// <summary>Sequence lengths by device: CPU 1024, 2048 (H=8); CUDA 4k..32k (H=32).</summary>
    public static IEnumerable<int> Lengths => BenchSettings.Pick([64], [1024, 2048], [4096, 8192, 16384, 32768]);

    /// <summary>MHA and a 4:1 GQA.</summary>
    public static IEnumerable<int> KvHeadChoices => BenchSettings.Pick([4, 2], [8, 2], [32, 8]);

    /// <summary>Query heads: 8 on CPU, 32 on CUDA.</summary>
    public static int Heads => BenchSettings.Pick(4, 8, 32);

    /// <summary>Head dimension 128 (16 in smoke mode).</summary>
    public static int HeadDim => BenchSettings.Pick(16, 128, 128);

    /// <summary>Random q, k, v and output gradient.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Seed();
        bool grad = Pass == Pass.ForwardBackward;
        q = Randn([1, Heads, N, HeadDim], requiresGrad: grad);
        k = Randn([1, KvHeads, N, HeadDim], requiresGrad: grad);
        v = Randn([1, KvHeads, N, HeadDim], requiresGrad: grad);
        gradOut = Randn([1, Heads, N, HeadDim]);
    }

    /// <summary>Frees the inputs.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <summary>Full causal attention, SDPA (k/v repeated for GQA as HF's repeat_kv does).</summary>
    [Benchmark(Baseline = true)]
    public void FullSdpa() => Measure(Pass, () => EagerAttention.FullCausal(q, k, v), gradOut, [q, k, v]);

    /// <summary>S2 attention, the LongLoRA eager roll recipe on SDPA.</summary>
    [Benchmark]
    public void S2RollRecipe() => Measure(Pass, () => EagerAttention.S2Roll(q, k, v, GroupDivisor), gradOut, [q, k, v]);

    /// <summary>S2 attention without wrap-around, eager on views.</summary>
    [Benchmark]
    public void S2NoWrapRecipe() => Measure(Pass, () => EagerAttention.S2NoWrap(q, k, v, GroupDivisor), gradOut, [q, k, v]);

    /// <summary>The library's full causal attention.</summary>
    [Benchmark]
    public void Full() => Measure(Pass, () => AttentionFunctions.FullCausal(q, k, v), gradOut, [q, k, v]);

    /// <summary>The library's S2 attention, Roll policy (LongLoRA-compatible).</summary>
    [Benchmark]
    public void S2Roll() => Measure(Pass, () => AttentionFunctions.ShiftedSparse(q, k, v, 1.0 / GroupDivisor, S2WrapPolicy.Roll), gradOut, [q, k, v]);

    /// <summary>The library's S2 attention, NoWrap policy.</summary>
    [Benchmark]
    public void S2NoWrap() => Measure(Pass, () => AttentionFunctions.ShiftedSparse(q, k, v, 1.0 / GroupDivisor, S2WrapPolicy.NoWrap), gradOut, [q, k, v]);

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod)
    {
        double d = HeadDim, h = Heads, n = N, g = n / GroupDivisor, groups = GroupDivisor;
        static double Causal(double len, double dim) => 2 * len * len * dim;
        double forward = benchmarkMethod switch
        {
            nameof(FullSdpa) or "Full" => h * Causal(n, d),
            nameof(S2RollRecipe) or "S2Roll" => h * groups * Causal(g, d),
            nameof(S2NoWrapRecipe) or "S2NoWrap" => (h / 2) * groups * Causal(g, d) + (h - h / 2) * ((groups - 1) * Causal(g, d) + 2 * Causal(g / 2, d)),
            _ => 0,
        };
        return new Work(Pass == Pass.ForwardBackward ? 3.5 * forward : forward, 0);
    }
}
