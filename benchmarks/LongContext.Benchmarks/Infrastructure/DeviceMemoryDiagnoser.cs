using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Reports;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// Reads <see cref="DeviceMemory.UsedBytes"/> right after each case's measured iterations (the benchmarks run
/// in-process, so the reading is this process's device) and shows it, minus the reading before the first case, in the
/// <see cref="DeviceMemoryColumn"/>.
/// </summary>
public sealed class DeviceMemoryDiagnoser : CaseReadingDiagnoser
{
    private long? baseline;

    private DeviceMemoryDiagnoser()
        : base("LongContextDeviceMemory")
    {
    }

    /// <summary>The one instance.</summary>
    public static DeviceMemoryDiagnoser Instance { get; } = new();

    /// <inheritdoc />
    public override void Handle(HostSignal signal, DiagnoserActionParameters parameters)
    {
        if (signal == HostSignal.BeforeAnythingElse) baseline ??= DeviceMemory.UsedBytes();
        if (signal == HostSignal.AfterActualRun && DeviceMemory.UsedBytes() is long used)
        {
            Record(parameters.BenchmarkCase, used - (baseline ?? 0));
        }
    }
}

/// <summary>"Dev MiB": device memory in use after the case (NVML), above the starting point; CUDA only.</summary>
public sealed class DeviceMemoryColumn : CaseReadingColumn
{
    private DeviceMemoryColumn()
        : base(DeviceMemoryDiagnoser.Instance, "LongContext.DeviceMemory", "Dev MiB", 2,
            "Device memory in use after the case (NVML), minus the reading before the first case: PyTorch's caching-allocator reservation high-water mark so far in this process (upper bound of the case's peak)")
    {
    }

    /// <summary>The one instance.</summary>
    public static DeviceMemoryColumn Instance { get; } = new();

    /// <inheritdoc />
    public override bool IsAvailable(Summary summary) => BenchSettings.IsCuda;
}
