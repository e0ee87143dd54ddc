using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>The float32 pieces HF's frequency functions share, written with the same operations HF uses.</summary>
internal static class RopeFrequencyMath
{
    /// <summary><c>torch.arange(0, dim, 2, dtype=int64).float() / dim</c>: float32 (dim/2).</summary>
    public static Tensor Exponents(int dim) => arange(0, dim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32).div(dim);

    /// <summary><c>base ** exponents</c> with a Python float base: the base is rounded to float32, then a float32 pow.</summary>
    public static Tensor Power(double @base, Tensor exponents) => tensor((float)@base).pow(exponents);

    /// <summary><c>1.0 / (theta ** (arange(0, dim, 2) / dim))</c>: float32 (dim/2). Python's <c>1.0 / t</c> is <c>t.reciprocal()</c>.</summary>
    public static Tensor DefaultInverseFrequencies(double theta, int dim) => Power(theta, Exponents(dim)).reciprocal();
}
