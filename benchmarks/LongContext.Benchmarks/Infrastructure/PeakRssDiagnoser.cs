using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Reports;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// CPU runs: resets the process's peak resident memory right before each case's measured iterations and reads it
/// right after (<see cref="ProcessMemory"/>); the <see cref="PeakRssColumn"/> shows the peak minus the resident size
/// at the reset (what setup holds), i.e. the most memory one invocation added on top of its inputs.
/// </summary>
public sealed class PeakRssDiagnoser : CaseReadingDiagnoser
{
    private long? start;

    private PeakRssDiagnoser()
        : base("LongContextPeakRss")
    {
    }

    /// <summary>The one instance.</summary>
    public static PeakRssDiagnoser Instance { get; } = new();

    /// <inheritdoc />
    public override void Handle(HostSignal signal, DiagnoserActionParameters parameters)
    {
        if (signal == HostSignal.BeforeActualRun)
        {
            start = ProcessMemory.ResetPeak() ? ProcessMemory.ResidentBytes() : null;
        }
        else if (signal == HostSignal.AfterActualRun && start is long before && ProcessMemory.PeakResidentBytes() is long peak)
        {
            Record(parameters.BenchmarkCase, peak - before);
        }
    }
}

/// <summary>"Peak RSS MiB": the peak resident memory of a case's measured iterations above the resident size before them (CPU).</summary>
public sealed class PeakRssColumn : CaseReadingColumn
{
    private PeakRssColumn()
        : base(PeakRssDiagnoser.Instance, "LongContext.PeakRss", "Peak RSS MiB", 3,
            "Peak resident memory during the case's measured iterations (VmHWM, reset before them) minus the resident memory at the reset: what one invocation adds on top of setup")
    {
    }

    /// <summary>The one instance.</summary>
    public static PeakRssColumn Instance { get; } = new();

    /// <inheritdoc />
    public override bool IsAvailable(Summary summary) => !BenchSettings.IsCuda;
}
