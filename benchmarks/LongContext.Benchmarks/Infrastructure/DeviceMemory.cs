using System.Runtime.InteropServices;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// Device memory as the driver reports it, through NVML (libnvidia-ml.so.1, installed with every NVIDIA driver).
/// TorchSharp 0.107 exposes none of torch.cuda's memory statistics (no memory_allocated / max_memory_allocated /
/// reset_peak_memory_stats), so this reads the memory in use on the device: the CUDA context plus whatever PyTorch's
/// caching allocator has reserved. The allocator keeps freed blocks, so the reading after a case is the reserved
/// high-water mark of the process so far: an upper bound of the peak allocated by that case, exact only for the
/// largest case of a run (run one case per process, e.g. with --filter, for a per-case number).
/// </summary>
public static class DeviceMemory
{
    private const string Nvml = "libnvidia-ml.so.1";
    private static readonly Lazy<IntPtr> Handle = new(Open);

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    [DllImport(Nvml, EntryPoint = "nvmlInit_v2")]
    private static extern int NvmlInit();

    [DllImport(Nvml, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
    private static extern int NvmlDeviceGetHandleByIndex(uint index, out IntPtr device);

    [DllImport(Nvml, EntryPoint = "nvmlDeviceGetMemoryInfo")]
    private static extern int NvmlDeviceGetMemoryInfo(IntPtr device, out NvmlMemory memory);

    /// <summary>Bytes in use on device 0 (NVML index; CUDA_VISIBLE_DEVICES is honoured by picking its first entry), or null when NVML is unavailable.</summary>
    public static long? UsedBytes()
    {
        if (!BenchSettings.IsCuda || Handle.Value == IntPtr.Zero) return null;
        try
        {
            return NvmlDeviceGetMemoryInfo(Handle.Value, out NvmlMemory m) == 0 ? (long)m.Used : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    private static IntPtr Open()
    {
        try
        {
            if (NvmlInit() != 0) return IntPtr.Zero;
            uint index = 0;
            string? visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES");
            if (visible is not null && uint.TryParse(visible.Split(',')[0], out uint first)) index = first;
            return NvmlDeviceGetHandleByIndex(index, out IntPtr device) == 0 ? device : IntPtr.Zero;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return IntPtr.Zero;
        }
    }
}
