using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Llama;
using LongContext.Llama.Generation;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// The small model of the generation suites: CPU hidden 256, 4 layers, 4 heads of 64 (GQA 4:2), MLP 688,
/// vocab 32000; CUDA hidden 2048, 16 layers, 16 heads of 128 (GQA 16:4), MLP 5632; smoke hidden 64, 2 layers,
/// vocab 128. Default rope, random weights, evaluation mode.
/// </summary>
public static class GenerationShapes
{
    /// <summary>The config for a context of <paramref name="maxPositions"/>.</summary>
    public static LlamaConfig Config(int maxPositions) => new LlamaConfig
    {
        VocabSize = BenchSettings.Pick(128, 32000, 32000),
        HiddenSize = BenchSettings.Pick(64, 256, 2048),
        IntermediateSize = BenchSettings.Pick(128, 688, 5632),
        NumHiddenLayers = BenchSettings.Pick(2, 4, 16),
        NumAttentionHeads = BenchSettings.Pick(4, 4, 16),
        NumKeyValueHeads = BenchSettings.Pick(2, 2, 4),
        HeadDim = BenchSettings.Pick(16, 64, 128),
        MaxPositionEmbeddings = maxPositions,
        RmsNormEps = 1e-5,
        Rope = RopeParameters.Default(),
    };

    /// <summary>Prompt lengths: 512 and 2048 (32 in smoke mode).</summary>
    public static IEnumerable<int> Lengths => BenchSettings.Pick([32], [512, 2048], [512, 2048]);
}

/// <summary>
/// What the generation suites set up: the random <see cref="GenerationShapes"/> model on the device in evaluation
/// mode and a KV cache for one sequence, both kept until its [GlobalCleanup].
/// </summary>
public abstract class GenerationBenchmarkBase : BenchmarkBase
{
    /// <summary>The model.</summary>
    protected LlamaForCausalLM Model { get; private set; } = null!;

    /// <summary>Its cache, batch 1.</summary>
    protected KvCache Cache { get; private set; } = null!;

    /// <summary>Seeds, then builds the model for a context of <paramref name="positions"/> and a cache of as many; returns the config.</summary>
    protected LlamaConfig BuildModelAndCache(int positions)
    {
        Seed();
        LlamaConfig config = GenerationShapes.Config(positions);
        Model = Keep(LlamaShapes.OnDevice(() => new LlamaForCausalLM(config, DType)));
        Model.to(Device);
        Model.eval();
        Cache = Keep(new KvCache(config, 1, positions, DType, Device));
        return config;
    }

    /// <summary>Frees the model, the cache and what the suite kept.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();
}

/// <summary>
/// Prefill of an N-token prompt: recomputing without a cache (a full forward with (N, vocab) logits, the baseline) vs
/// the cached prefill (keys and values into a KV cache in chunks of 512, logits at the last position only).
/// </summary>
public class GenerationPrefillBenchmarks : GenerationBenchmarkBase, IWorkload
{
    private Tensor ids = null!;

    /// <summary>Prompt length.</summary>
    [ParamsSource(nameof(Lengths))]
    public int N { get; set; }

    /// <summary>Lengths by device.</summary>
    public static IEnumerable<int> Lengths => GenerationShapes.Lengths;

    /// <summary>Random model and prompt on the device; a cache for the prompt.</summary>
    [GlobalSetup]
    public void Setup()
    {
        LlamaConfig config = BuildModelAndCache(N);
        ids = Make(() => randint(0, config.VocabSize, [1, N], ScalarType.Int64, Device));
    }

    /// <summary>Without a cache: a full forward (what every step of uncached generation recomputes).</summary>
    [Benchmark(Baseline = true)]
    public void Recompute()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _ = Model.forward(ids);
        Sync();
    }

    /// <summary>Into a KV cache, chunks of 512, last-position logits only.</summary>
    [Benchmark]
    public void Cached()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Cache.Reset();
        _ = Model.NextTokenLogits(ids, Cache, chunkSize: 512);
        Sync();
    }

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod) => new(0, 0, N);
}

/// <summary>
/// One decode step at context N: recomputing the whole sequence without a cache (a full forward of N + 1 tokens, the
/// baseline) vs a cached step (one new token attends the N cached positions; the cache is rewound after each step).
/// </summary>
public class GenerationDecodeBenchmarks : GenerationBenchmarkBase, IWorkload
{
    private Tensor sequence = null!, next = null!;

    /// <summary>Context length before the step.</summary>
    [ParamsSource(nameof(Lengths))]
    public int N { get; set; }

    /// <summary>Lengths by device.</summary>
    public static IEnumerable<int> Lengths => GenerationShapes.Lengths;

    /// <summary>Random model; the cache prefilled with N tokens.</summary>
    [GlobalSetup]
    public void Setup()
    {
        LlamaConfig config = BuildModelAndCache(N + 1);
        sequence = Make(() => randint(0, config.VocabSize, [1, N + 1], ScalarType.Int64, Device));
        next = Make(() => sequence.narrow(1, N, 1).clone());
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _ = Model.NextTokenLogits(sequence.narrow(1, 0, N), Cache, chunkSize: 512);
    }

    /// <summary>Without a cache: the next token's logits from a full forward of the whole sequence.</summary>
    [Benchmark(Baseline = true)]
    public void Recompute()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _ = Model.forward(sequence)[0, -1];
        Sync();
    }

    /// <summary>With the cache: one position computed.</summary>
    [Benchmark]
    public void Cached()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _ = Model.NextTokenLogits(next, Cache);
        Cache.Truncate(N);
        Sync();
    }

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod) => new(0, 0, 1);
}
