using System.Diagnostics;

namespace LongContext.Demo.Experiment;

/// <summary>
/// Peak resident memory of the process (Linux <c>VmHWM</c>), reset at the start of a phase by writing 5 to
/// <c>/proc/self/clear_refs</c>. Where that is unavailable, the process-lifetime peak working set is reported and
/// <see cref="Resettable"/> is false. Host memory only: on CUDA the GPU's memory is not included.
/// </summary>
public static class PeakMemory
{
    /// <summary>Whether the peak can be reset per phase.</summary>
    public static bool Resettable { get; private set; } = OperatingSystem.IsLinux();

    /// <summary>Starts a phase: resets the peak to the current resident size when possible.</summary>
    public static void Reset()
    {
        if (!Resettable) return;
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Resettable = false;
        }
    }

    /// <summary>Peak resident bytes since the last <see cref="Reset"/> (or since the start).</summary>
    public static long PeakBytes()
    {
        if (OperatingSystem.IsLinux())
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        using var self = Process.GetCurrentProcess();
        return self.PeakWorkingSet64;
    }

    /// <summary>What the numbers mean, for the report.</summary>
    public static string Description => Resettable
        ? "process peak RSS (Linux VmHWM, reset at the start of each method's phase: preparation, training, evaluation)"
        : "process peak working set since start (not resettable on this system)";
}
