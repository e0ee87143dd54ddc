using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// A derived throughput column: the work of one invocation (from <see cref="IWorkload.WorkOf"/> on a fresh instance
/// with the case's parameters) divided by the measured mean time. TFLOP/s for compute-bound cases, GB/s of minimal
/// traffic for memory-bound ones.
/// </summary>
public sealed class ThroughputColumn : IColumn
{
    private readonly Kind kind;

    private ThroughputColumn(Kind kind) => this.kind = kind;

    private enum Kind
    {
        Flops,
        Bytes,
        Tokens,
    }

    /// <summary>TFLOP/s (10^12 floating-point operations per second).</summary>
    public static ThroughputColumn TeraFlops { get; } = new(Kind.Flops);

    /// <summary>GB/s (10^9 bytes per second) of minimal memory traffic.</summary>
    public static ThroughputColumn GigaBytes { get; } = new(Kind.Bytes);

    /// <summary>Tokens per second (training steps).</summary>
    public static ThroughputColumn Tokens { get; } = new(Kind.Tokens);

    /// <inheritdoc />
    public string Id => "LongContext." + kind;

    /// <inheritdoc />
    public string ColumnName => kind switch { Kind.Flops => "TFLOP/s", Kind.Bytes => "GB/s", _ => "tok/s" };

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => (int)kind;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => kind switch
    {
        Kind.Flops => "Floating-point operations per invocation (stated per suite) / mean time, in 10^12 per second",
        Kind.Bytes => "Minimal device-memory traffic per invocation (inputs read once, outputs written once) / mean time, in 10^9 bytes per second",
        _ => "Tokens per training step / mean time",
    };

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        Work work = WorkOf(benchmarkCase);
        double amount = Amount(work);
        if (meanNs is null or <= 0 || amount <= 0) return "-";
        double perSecond = amount / (meanNs.Value * 1e-9);
        var culture = System.Globalization.CultureInfo.InvariantCulture;
        return kind switch
        {
            Kind.Flops => (perSecond / 1e12).ToString("0.000", culture),
            Kind.Bytes => (perSecond / 1e9).ToString("0.0", culture),
            _ => perSecond.ToString("0", culture),
        };
    }

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) =>
        summary.BenchmarksCases.Any(c => Amount(WorkOf(c)) > 0);

    private double Amount(Work w) => kind switch { Kind.Flops => w.Flops, Kind.Bytes => w.Bytes, _ => w.Tokens };

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    /// <summary>The work of one case: a fresh instance of its class, parameters set, asked for its method.</summary>
    public static Work WorkOf(BenchmarkCase benchmarkCase)
    {
        Type type = benchmarkCase.Descriptor.Type;
        if (!typeof(IWorkload).IsAssignableFrom(type)) return Work.None;
        var instance = (IWorkload)Activator.CreateInstance(type)!;
        foreach (var p in benchmarkCase.Parameters.Items)
        {
            ParameterSetter.Set(instance, p.Name, p.Value);
        }
        return instance.WorkOf(benchmarkCase.Descriptor.WorkloadMethod.Name);
    }
}

/// <summary>Sets a [Params]-style property or field by name (shared by the throughput column and the smoke runner).</summary>
public static class ParameterSetter
{
    /// <summary>Assigns <paramref name="value"/> to the public property or field <paramref name="name"/>.</summary>
    public static void Set(object instance, string name, object? value)
    {
        Type type = instance.GetType();
        if (type.GetProperty(name) is { } property) property.SetValue(instance, value);
        else if (type.GetField(name) is { } field) field.SetValue(instance, value);
        else throw new ArgumentException($"{type.Name} has no parameter member '{name}'.", nameof(name));
    }
}
