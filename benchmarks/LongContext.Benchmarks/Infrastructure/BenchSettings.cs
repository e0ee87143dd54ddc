using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// Process-wide settings of one benchmark run (device, dtype, smoke mode). Benchmarks run in-process, so the
/// benchmark classes read these statics directly (BenchmarkDotNet's [ParamsSource] members included).
/// </summary>
public static class BenchSettings
{
    /// <summary>The seed every benchmark's setup starts from.</summary>
    public const long Seed = 20240917;

    /// <summary>The device the tensors live on.</summary>
    public static Device Device { get; private set; } = CPU;

    /// <summary>The compute dtype (float32 on CPU, bfloat16 on CUDA unless overridden).</summary>
    public static ScalarType DType { get; private set; } = ScalarType.Float32;

    /// <summary>True for the short mode: tiny sizes, a plain runner, one measured invocation.</summary>
    public static bool Smoke { get; private set; }

    /// <summary>True when the device is CUDA.</summary>
    public static bool IsCuda => Device.type == DeviceType.CUDA;

    /// <summary>Size of one element of <see cref="DType"/> in bytes.</summary>
    public static int ElementSize => DType switch
    {
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        ScalarType.Float64 => 8,
        _ => throw new InvalidOperationException($"Unsupported dtype {DType}."),
    };

    /// <summary>Applies parsed options. Initializes the CUDA backend when asked for CUDA.</summary>
    public static void Apply(BenchOptions options)
    {
        Smoke = options.Smoke;
        if (options.Device == "cuda")
        {
            torch.InitializeDeviceType(DeviceType.CUDA);
            if (!torch.cuda.is_available())
            {
                throw new InvalidOperationException(
                    "--device cuda: torch.cuda.is_available() is false after InitializeDeviceType(CUDA). " +
                    "Run through scripts/run-cuda.sh so LD_LIBRARY_PATH points at a CUDA libtorch.");
            }
            Device = CUDA;
        }
        else
        {
            Device = CPU;
        }
        DType = options.DType ?? (IsCuda ? ScalarType.BFloat16 : ScalarType.Float32);
    }

    /// <summary>Picks a size list by mode and device.</summary>
    public static T[] Pick<T>(T[] smoke, T[] cpu, T[] cuda) => Smoke ? smoke : IsCuda ? cuda : cpu;

    /// <summary>Picks a size by mode and device.</summary>
    public static T Pick<T>(T smoke, T cpu, T cuda) => Smoke ? smoke : IsCuda ? cuda : cpu;

    /// <summary>Waits for the device to finish queued work (CUDA); a no-op on CPU.</summary>
    public static void Synchronize()
    {
        if (IsCuda) torch.cuda.synchronize();
    }

    /// <summary>Seeds the CPU and CUDA generators.</summary>
    public static void SeedAll()
    {
        torch.manual_seed(Seed);
        if (IsCuda) torch.cuda.manual_seed_all(Seed);
    }
}
