using static TorchSharp.torch;

namespace LongContext.GpuCheck.References;

/// <summary>
/// Seeded inputs made on the CPU (so a case is the same on every device), rounded once to the compute dtype; references
/// are computed from those rounded values, so input rounding is never counted as error.
/// </summary>
internal static class Inputs
{
    /// <summary>A CPU generator for one case.</summary>
    public static Generator Generator(int seed) => new((ulong)seed);

    /// <summary>Normal(0, std) values in float64 on the CPU.</summary>
    public static Tensor Normal(Generator gen, long[] shape, double std = 1.0)
        => randn(shape, ScalarType.Float64, generator: gen).mul_(std);

    /// <summary>
    /// The values rounded to <paramref name="dtype"/> on <paramref name="device"/> (a leaf that may require gradients), and
    /// the same rounded values in float64 on the CPU as a leaf for the reference's autograd.
    /// </summary>
    public static (Tensor OnDevice, Tensor Exact) Place(Tensor values, ScalarType dtype, Device device, bool requiresGrad = false)
    {
        Tensor rounded = values.to(dtype);
        Tensor onDevice = rounded.to(device).detach().requires_grad_(requiresGrad);
        Tensor exact = rounded.to(ScalarType.Float64).detach().requires_grad_(requiresGrad);
        return (onDevice, exact);
    }
}
