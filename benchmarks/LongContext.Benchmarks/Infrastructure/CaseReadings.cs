using System.Collections.Concurrent;
using System.Globalization;
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
/// The BenchmarkDotNet plumbing of a diagnoser that takes one reading in bytes per case from the host signals (the
/// benchmarks run in-process, so a reading is of this process): no overhead run, exporter, analyser, metric or
/// validation of its own. A subclass says when and what it reads in <see cref="Handle"/>, storing it with
/// <see cref="Record"/>; a <see cref="CaseReadingColumn"/> shows it.
/// </summary>
public abstract class CaseReadingDiagnoser : IDiagnoser
{
    private readonly ConcurrentDictionary<BenchmarkCase, long> readings = new();
    private readonly string id;

    /// <summary>A diagnoser of BenchmarkDotNet id <paramref name="id"/>.</summary>
    protected CaseReadingDiagnoser(string id) => this.id = id;

    /// <summary>The reading of a case in bytes, if any.</summary>
    public long? Reading(BenchmarkCase benchmarkCase) => readings.TryGetValue(benchmarkCase, out long b) ? b : null;

    /// <summary>Stores the reading of a case.</summary>
    protected void Record(BenchmarkCase benchmarkCase, long bytes) => readings[benchmarkCase] = bytes;

    /// <inheritdoc />
    public IEnumerable<string> Ids => [id];

    /// <inheritdoc />
    public IEnumerable<IExporter> Exporters => [];

    /// <inheritdoc />
    public IEnumerable<IAnalyser> Analysers => [];

    /// <inheritdoc />
    public RunMode GetRunMode(BenchmarkCase benchmarkCase) => RunMode.NoOverhead;

    /// <inheritdoc />
    public abstract void Handle(HostSignal signal, DiagnoserActionParameters parameters);

    /// <inheritdoc />
    public IEnumerable<Metric> ProcessResults(DiagnoserResults results) => [];

    /// <inheritdoc />
    public void DisplayResults(ILogger logger)
    {
    }

    /// <inheritdoc />
    public IEnumerable<ValidationError> Validate(ValidationParameters validationParameters) => [];
}

/// <summary>
/// A custom summary column of a <see cref="CaseReadingDiagnoser"/>'s readings in MiB (whole numbers; "-" for a case
/// without one), always shown where <see cref="IsAvailable"/> says the reading exists.
/// </summary>
/// <param name="diagnoser">The diagnoser that takes the readings.</param>
/// <param name="id">The column's BenchmarkDotNet id.</param>
/// <param name="columnName">The header.</param>
/// <param name="priorityInCategory">Its place among the custom columns.</param>
/// <param name="legend">What a value means.</param>
public abstract class CaseReadingColumn(CaseReadingDiagnoser diagnoser, string id, string columnName, int priorityInCategory, string legend) : IColumn
{
    /// <inheritdoc />
    public string Id => id;

    /// <inheritdoc />
    public string ColumnName => columnName;

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => priorityInCategory;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => legend;

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
        diagnoser.Reading(benchmarkCase) is long b ? (b / 1048576.0).ToString("0", CultureInfo.InvariantCulture) : "-";

    /// <inheritdoc />
    public abstract bool IsAvailable(Summary summary);

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
