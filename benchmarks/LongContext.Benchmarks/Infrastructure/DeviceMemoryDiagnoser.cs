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
/// Reads <see cref="DeviceMemory.UsedBytes"/> right after each case's measured iterations (the benchmarks run
/// in-process, so the reading is this process's device) and shows it, minus the reading before the first case, in the
/// <see cref="DeviceMemoryColumn"/>.
/// </summary>
public sealed class DeviceMemoryDiagnoser : IDiagnoser
{
    private static readonly ConcurrentDictionary<BenchmarkCase, long> Readings = new();
    private static long? baseline;

    /// <summary>The one instance.</summary>
    public static DeviceMemoryDiagnoser Instance { get; } = new();

    /// <summary>The reading of a case, in bytes above the process's starting point, if any.</summary>
    public static long? Reading(BenchmarkCase benchmarkCase) => Readings.TryGetValue(benchmarkCase, out long b) ? b : null;

    /// <inheritdoc />
    public IEnumerable<string> Ids => ["LongContextDeviceMemory"];

    /// <inheritdoc />
    public IEnumerable<IExporter> Exporters => [];

    /// <inheritdoc />
    public IEnumerable<IAnalyser> Analysers => [];

    /// <inheritdoc />
    public RunMode GetRunMode(BenchmarkCase benchmarkCase) => RunMode.NoOverhead;

    /// <inheritdoc />
    public void Handle(HostSignal signal, DiagnoserActionParameters parameters)
    {
        if (signal == HostSignal.BeforeAnythingElse) baseline ??= DeviceMemory.UsedBytes();
        if (signal == HostSignal.AfterActualRun && DeviceMemory.UsedBytes() is long used)
        {
            Readings[parameters.BenchmarkCase] = used - (baseline ?? 0);
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

/// <summary>"Dev MiB": device memory in use after the case (NVML), above the starting point; CUDA only.</summary>
public sealed class DeviceMemoryColumn : IColumn
{
    /// <summary>The one instance.</summary>
    public static DeviceMemoryColumn Instance { get; } = new();

    /// <inheritdoc />
    public string Id => "LongContext.DeviceMemory";

    /// <inheritdoc />
    public string ColumnName => "Dev MiB";

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => 2;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => "Device memory in use after the case (NVML), minus the reading before the first case: PyTorch's caching-allocator reservation high-water mark so far in this process (upper bound of the case's peak)";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
        DeviceMemoryDiagnoser.Reading(benchmarkCase) is long b ? (b / 1048576.0).ToString("0", System.Globalization.CultureInfo.InvariantCulture) : "-";

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => BenchSettings.IsCuda;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
