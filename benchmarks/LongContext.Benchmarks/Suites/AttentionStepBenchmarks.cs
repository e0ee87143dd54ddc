using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Infrastructure;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// The benchmarks of a training-step suite: one step per <see cref="StepAttention"/>, full causal attention the
/// baseline. A suite builds its model in [GlobalSetup] and says what a step is in <see cref="Step"/>.
/// </summary>
public abstract class AttentionStepBenchmarks : BenchmarkBase
{
    /// <summary>Full causal attention.</summary>
    [Benchmark(Baseline = true)]
    public void Full() => Step(StepAttention.Full);

    /// <summary>S2-Attn, Roll (the LongLoRA recipe's attention).</summary>
    [Benchmark]
    public void S2Roll() => Step(StepAttention.S2Roll);

    /// <summary>S2-Attn, NoWrap.</summary>
    [Benchmark]
    public void S2NoWrap() => Step(StepAttention.S2NoWrap);

    /// <summary>One measured training step with <paramref name="attention"/>; the device is synchronized at its end.</summary>
    protected abstract void Step(StepAttention attention);
}
