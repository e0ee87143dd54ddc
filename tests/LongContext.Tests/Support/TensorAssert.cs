using static TorchSharp.torch;

namespace LongContext.Tests.Support;

/// <summary>Tensor comparisons that report the worst element, for tolerance-stated numeric tests.</summary>
public static class TensorAssert
{
    /// <summary>Largest absolute difference, computed in float64 on the CPU.</summary>
    public static double MaxAbsDiff(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(expected.shape, actual.shape);
        var a = actual.detach().cpu().to(float64);
        var e = expected.detach().cpu().to(float64);
        return (a - e).abs().max().item<double>();
    }

    /// <summary>Asserts max |actual - expected| &lt;= tolerance, naming the case and the observed error.</summary>
    public static void Close(Tensor actual, Tensor expected, double tolerance, string what)
    {
        double err = MaxAbsDiff(actual, expected);
        Assert.True(err <= tolerance, $"{what}: max abs error {err:E3} exceeds tolerance {tolerance:E1}");
    }

    /// <summary>Asserts max |actual - expected| / max(|expected|, floor) &lt;= tolerance.</summary>
    public static void RelativeClose(Tensor actual, Tensor expected, double tolerance, string what, double floor = 1e-30)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(expected.shape, actual.shape);
        var a = actual.detach().cpu().to(float64);
        var e = expected.detach().cpu().to(float64);
        double err = ((a - e).abs() / e.abs().clamp_min(floor)).max().item<double>();
        Assert.True(err <= tolerance, $"{what}: max relative error {err:E3} exceeds tolerance {tolerance:E1}");
    }

    /// <summary>Asserts two tensors hold identical values and dtype.</summary>
    public static void Equal(Tensor actual, Tensor expected, string what)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        using var eq = actual.cpu().eq(expected.cpu()).all();
        Assert.True(eq.item<bool>(), $"{what}: tensors differ");
    }
}
