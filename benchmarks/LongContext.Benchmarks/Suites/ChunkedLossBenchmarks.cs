using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Llama;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// The causal-LM loss of one row, forward + backward into the last hidden states and the head weight: the plain loss
/// (full (N, vocab) logits, then <see cref="CausalLmLoss.Compute"/>: the baseline) against
/// <see cref="ChunkedCausalLmLoss"/> (chunks of 1024 positions, logits recomputed in backward). Vocabulary 32,000
/// (Llama 2). CPU: N = 8192, hidden 256 (the logits' size does not depend on the hidden width; the matmuls do), float32;
/// CUDA: N = 8192 and 32768, hidden 4096, the run's dtype. The CPU table's Peak RSS column is the memory saved.
/// </summary>
public class ChunkedLossBenchmarks : BenchmarkBase, IWorkload
{
    private const int ChunkSize = 1024;
    private Tensor hidden = null!, weight = null!, labels = null!;

    /// <summary>Tokens in the row.</summary>
    [ParamsSource(nameof(Lengths))]
    public int N { get; set; }

    /// <summary>Lengths by device.</summary>
    public static IEnumerable<int> Lengths => BenchSettings.Pick([64], [8192], [8192, 32768]);

    private static long Vocab => BenchSettings.Pick(100, 32000, 32000);

    private static long Hidden => BenchSettings.Pick(16, 256, 4096);

    /// <summary>Random hidden states and head weight (both requiring gradients), labels with a padded tail.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Seed();
        hidden = Randn([1, N, Hidden], requiresGrad: true);
        weight = Randn([Vocab, Hidden], scale: 1 / Math.Sqrt(Hidden), requiresGrad: true);
        labels = Make(() =>
        {
            Tensor l = torch.randint(0, Vocab, [1, N], dtype: ScalarType.Int64, device: Device);
            l[0, TensorIndex.Slice(N - N / 16)] = torch.tensor(-100L, device: Device);
            return l;
        });
    }

    /// <summary>Frees the inputs.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <summary>Full logits, then HF's loss (what <c>LlamaForCausalLM.Loss</c> does).</summary>
    [Benchmark(Baseline = true)]
    public void Plain() => Run(() => CausalLmLoss.Compute(hidden.matmul(weight.t()), labels));

    /// <summary>The chunked loss.</summary>
    [Benchmark]
    public void Chunked() => Run(() => ChunkedCausalLmLoss.Compute(hidden, weight, labels, ChunkSize));

    private void Run(Func<Tensor> loss)
    {
        using var scope = torch.NewDisposeScope();
        Tensor value = loss();
        Backward(value, torch.ones_like(value), [hidden, weight]);
        Sync();
    }

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod) => new(0, 0, N);
}
