using System.Globalization;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// This process's resident memory from Linux's <c>/proc/self/status</c>: <c>VmRSS</c> now and <c>VmHWM</c>, the
/// peak since start or since the last reset (writing <c>5</c> to <c>/proc/self/clear_refs</c>, Linux 4.0+). On the
/// CPU libtorch allocates with malloc, and glibc serves blocks above its mmap threshold (at most 32 MiB) with their own
/// mappings that return to the system when freed, so the peak of a case is visible in RSS. Null off Linux.
/// </summary>
public static class ProcessMemory
{
    /// <summary>Resident bytes now, or null when unavailable.</summary>
    public static long? ResidentBytes() => Read("VmRSS:");

    /// <summary>Peak resident bytes since the last <see cref="ResetPeak"/>, or null when unavailable.</summary>
    public static long? PeakResidentBytes() => Read("VmHWM:");

    /// <summary>Resets the peak to the current resident size; false when the kernel does not allow it.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long? Read(string key)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
                string kb = line[key.Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }
}
