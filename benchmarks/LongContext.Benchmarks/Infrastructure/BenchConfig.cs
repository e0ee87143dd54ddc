using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Csv;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Perfolizer.Horology;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// The BenchmarkDotNet configuration of a suite. Benchmarks run in-process (the settings are statics, the published
/// CUDA binary has no SDK to build child projects, and libtorch loads once). Every invocation ends with a device
/// synchronization, so wall-clock timing is correct on CUDA.
/// </summary>
public static class BenchConfig
{
    /// <summary>
    /// CPU: 2 warm-up and 8 measured iterations of one invocation each (keeps the whole CPU run near 10 minutes).
    /// CUDA: 5 warm-up and 20 measured iterations of about 250 ms each (BenchmarkDotNet picks the invocation count).
    /// Seconds-long suites (model7b): 2 warm-up and 5 measured single invocations.
    /// </summary>
    public static IConfig Create(Suite suite)
    {
        Job job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithLaunchCount(1);
        job = suite.SecondsPerInvocation
            ? job.WithWarmupCount(2).WithIterationCount(5).WithInvocationCount(1).WithUnrollFactor(1)
            : BenchSettings.IsCuda
                ? job.WithWarmupCount(5).WithIterationCount(20).WithIterationTime(TimeInterval.FromMilliseconds(250))
                : job.WithWarmupCount(2).WithIterationCount(8).WithInvocationCount(1).WithUnrollFactor(1);
        job = job.WithId(BenchSettings.IsCuda ? "cuda" : "cpu");

        ManualConfig config = ManualConfig.CreateEmpty()
            .AddJob(job)
            .AddLogger(ConsoleLogger.Default)
            .AddExporter(MarkdownExporter.GitHub, CsvExporter.Default)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddColumn(StatisticColumn.Median, ThroughputColumn.TeraFlops, ThroughputColumn.GigaBytes, ThroughputColumn.Tokens)
            .HideColumns("Job", "Toolchain", "IterationCount", "IterationTime", "LaunchCount", "WarmupCount", "InvocationCount", "UnrollFactor", "Error")
            .WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend))
            .WithOption(ConfigOptions.JoinSummary, false)
            .WithArtifactsPath(Path.Combine(Directory.GetCurrentDirectory(), "BenchmarkDotNet.Artifacts", BenchSettings.IsCuda ? "cuda" : "cpu"));
        if (BenchSettings.IsCuda)
        {
            config = config.AddDiagnoser(DeviceMemoryDiagnoser.Instance).AddColumn(DeviceMemoryColumn.Instance);
        }
        else
        {
            config = config.AddDiagnoser(PeakRssDiagnoser.Instance).AddColumn(PeakRssColumn.Instance);
        }
        return config;
    }
}
