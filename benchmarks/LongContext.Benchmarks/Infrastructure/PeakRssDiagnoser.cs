using System.Collections.Concurrent;
using BenchmarkDotNet.Analysers;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Validators;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// CPU runs: resets the process's peak resident memory right before each case's measured iterations and reads it
/// right after (<see cref="ProcessMemory"/>); the <see cref="PeakRssColumn"/> shows the peak minus the resident size
/// at the reset (what setup holds), i.e. the most memory one invocation added on top of its inputs.
/// </summary>
public sealed class PeakRssDiagnoser : IDiagnoser
{
    private static readonly ConcurrentDictionary<BenchmarkCase, long> Readings = new();
    private static long? start;

    /// <summary>The one instance.</summary>
    public static PeakRssDiagnoser Instance { get; } = new();

    /// <summary>The reading of a case in bytes, if any.</summary>
    public static long? Reading(BenchmarkCase benchmarkCase) => Readings.TryGetValue(benchmarkCase, out long b) ? b : null;

    /// <inheritdoc />
    public IEnumerable<string> Ids => ["LongContextPeakRss"];

    /// <inheritdoc />
    public IEnumerable<IExporter> Exporters => [];

    /// <inheritdoc />
    public IEnumerable<IAnalyser> Analysers => [];

    /// <inheritdoc />
    public RunMode GetRunMode(BenchmarkCase benchmarkCase) => RunMode.NoOverhead;

    /// <inheritdoc />
    public void Handle(HostSignal signal, DiagnoserActionParameters parameters)
    {
        if (signal == HostSignal.BeforeActualRun)
        {
            start = ProcessMemory.ResetPeak() ? ProcessMemory.ResidentBytes() : null;
        }
        else if (signal == HostSignal.AfterActualRun && start is long before && ProcessMemory.PeakResidentBytes() is long peak)
        {
            Readings[parameters.BenchmarkCase] = peak - before;
        }
    }

    /// <inheritdoc />
    public IEnumerable<Metric> ProcessResults(DiagnoserResults results) => [];

    /// <inheritdoc />
    public void DisplayResults(ILogger logger)
    {
    }

    /// <inheritdoc />
    public IEnumerable<ValidationError> Validate(ValidationParameters validationParameters) => [];
}

/// <summary>"Peak RSS MiB": the peak resident memory of a case's measured iterations above the resident size before them (CPU).</summary>
public sealed class PeakRssColumn : IColumn
{
    /// <summary>The one instance.</summary>
    public static PeakRssColumn Instance { get; } = new();

    /// <inheritdoc />
    public string Id => "LongContext.PeakRss";

    /// <inheritdoc />
    public string ColumnName => "Peak RSS MiB";

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => 3;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => "Peak resident memory during the case's measured iterations (VmHWM, reset before them) minus the resident memory at the reset: what one invocation adds on top of setup";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
        PeakRssDiagnoser.Reading(benchmarkCase) is long b ? (b / 1048576.0).ToString("0", System.Globalization.CultureInfo.InvariantCulture) : "-";

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => !BenchSettings.IsCuda;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
