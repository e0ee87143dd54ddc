using LongContext.IO;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Results;

/// <summary>Error measures and tolerance scales, all computed in float64 on the CPU.</summary>
internal static class Errors
{
    /// <summary>Largest absolute difference; shapes must agree.</summary>
    /// <exception cref="ArgumentException">The shapes differ.</exception>
    public static double MaxAbsDiff(Tensor actual, Tensor reference)
    {
        if (!actual.shape.SequenceEqual(reference.shape))
            throw new ArgumentException($"shape [{string.Join(", ", actual.shape)}] differs from the reference's [{string.Join(", ", reference.shape)}].", nameof(actual));
        using var scope = NewDisposeScope();
        using var diff = actual.detach().cpu().to(ScalarType.Float64) - reference.detach().cpu().to(ScalarType.Float64);
        return diff.numel() == 0 ? 0 : diff.abs().max().item<double>();
    }

    /// <summary>Largest absolute value (the scale a low-precision tolerance is stated against).</summary>
    public static double MaxAbs(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.numel() == 0 ? 0 : t.detach().cpu().to(ScalarType.Float64).abs().max().item<double>();
    }

    /// <summary>Unit roundoff u of a floating dtype (half the distance from 1 to the next value).</summary>
    public static double UnitRoundoff(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => Math.Pow(2, -53),
        ScalarType.Float32 => Math.Pow(2, -24),
        ScalarType.Float16 => Math.Pow(2, -11),
        ScalarType.BFloat16 => Math.Pow(2, -8),
        _ => throw new ArgumentException($"dtype {dtype} is not a floating dtype.", nameof(dtype)),
    };

    /// <summary><paramref name="units"/> x u(dtype) x max |reference|: a tolerance in rounding units at the reference's scale.</summary>
    public static double Ulps(ScalarType dtype, Tensor reference, double units) => units * UnitRoundoff(dtype) * MaxAbs(reference);

    /// <summary>The report's name of a dtype: PyTorch's (<see cref="TorchDtypeNames"/>).</summary>
    public static string Name(ScalarType dtype) => TorchDtypeNames.Name(dtype);
}
