using LongContext.Benchmarks.Suites;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>One named suite: the benchmark classes it runs and how BenchmarkDotNet should run them.</summary>
/// <param name="Name">The command-line name.</param>
/// <param name="Types">The benchmark classes.</param>
/// <param name="CudaOnly">Full mode refuses to run it on CPU (the smoke mode still runs it on tiny sizes).</param>
/// <param name="SecondsPerInvocation">True when one invocation takes seconds: fewer iterations, one invocation each.</param>
public sealed record Suite(string Name, Type[] Types, bool CudaOnly = false, bool SecondsPerInvocation = false)
{
    /// <summary>Every suite, in the order <c>all</c> runs them.</summary>
    public static IReadOnlyList<Suite> All { get; } =
    [
        new("attention", [typeof(AttentionBenchmarks)]),
        new("rope", [typeof(RopeBenchmarks)]),
        new("lora", [typeof(LoraBenchmarks)]),
        new("quant", [typeof(Nf4DequantizeBenchmarks), typeof(Nf4QuantizeBenchmarks), typeof(QLoraLinearBenchmarks)]),
        new("layer", [typeof(DecoderLayerBenchmarks)]),
        new("model7b", [typeof(Model7bBenchmarks)], CudaOnly: true, SecondsPerInvocation: true),
        new("loss", [typeof(ChunkedLossBenchmarks)], SecondsPerInvocation: true),
        new("generation", [typeof(GenerationPrefillBenchmarks), typeof(GenerationDecodeBenchmarks)]),
    ];

    /// <summary>Looks a suite up by name.</summary>
    public static Suite Get(string name) => All.Single(s => s.Name == name);
}
