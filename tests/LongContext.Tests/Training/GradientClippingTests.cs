using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>
/// Total-norm clipping against a float64 computation over the gradients' values read out as doubles:
/// norm = sqrt(sum g^2) over every gradient together; scale = min(1, max / (norm + 1e-6)). Float32 gradients,
/// relative tolerance 1e-6 on the norm and 1e-6 absolute on the clipped gradients (values of order 1).
/// </summary>
[Trait(Category.Name, Category.Training)]
public sealed class GradientClippingTests
{
    private static List<Parameter> ParametersWithGradients(int seed)
    {
        var gen = new Random(seed);
        long[][] shapes = [[3, 4], [7], [2, 2, 5]];
        var list = new List<Parameter>();
        foreach (long[] shape in shapes)
        {
            var p = new Parameter(torch.zeros(shape));
            long n = shape.Aggregate(1L, (a, b) => a * b);
            p.grad = torch.tensor(Enumerable.Range(0, (int)n).Select(_ => (float)(2 * gen.NextDouble() - 1)).ToArray()).reshape(shape);
            list.Add(p);
        }
        return list;
    }

    private static double ReferenceNorm(IEnumerable<double[]> grads) => Math.Sqrt(grads.SelectMany(g => g).Sum(x => x * x));

    private static double[] Values(Parameter p)
    {
        using Tensor g = p.grad!;
        return g.to(ScalarType.Float64).data<double>().ToArray();
    }

    [Theory]
    [InlineData("clipped: max 0.5 is below the norm", 0.5)]
    [InlineData("clipped: max 2", 2.0)]
    [InlineData("untouched: max 100 is above the norm", 100.0)]
    public void ReturnsPreClipNorm_AndScalesAsTorch(string name, double maxNorm)
    {
        var ps = ParametersWithGradients(7);
        var before = ps.Select(Values).ToList();
        double expectedNorm = ReferenceNorm(before);
        double scale = Math.Min(1.0, maxNorm / (expectedNorm + 1e-6));

        double norm = GradientClipping.ClipByTotalNorm(ps, maxNorm);

        Assert.True(Math.Abs(norm - expectedNorm) <= 1e-6 * expectedNorm, $"{name}: norm {norm:R}, float64 reference {expectedNorm:R}");
        for (int i = 0; i < ps.Count; i++)
        {
            double[] after = Values(ps[i]);
            double err = after.Zip(before[i]).Max(x => Math.Abs(x.First - x.Second * scale));
            Assert.True(err <= 1e-6, $"{name}: gradient {i} max abs error {err:E3}");
        }
        if (scale < 1)
            Assert.True(Math.Abs(ReferenceNorm(ps.Select(Values)) - maxNorm) <= 1e-5 * maxNorm, $"{name}: clipped norm is not max_norm");
        foreach (var p in ps) p.Dispose();
    }

    [Fact]
    public void AgreesWithLibtorchsClipGradNorm()
    {
        var ours = ParametersWithGradients(11);
        var theirs = ParametersWithGradients(11);
        double a = GradientClipping.ClipByTotalNorm(ours, 0.7);
        double b = torch.nn.utils.clip_grad_norm_(theirs, 0.7);
        Assert.True(Math.Abs(a - b) <= 1e-6 * b, $"norm {a:R} vs libtorch {b:R}");
        for (int i = 0; i < ours.Count; i++)
        {
            using Tensor ga = ours[i].grad!, gb = theirs[i].grad!;
            TensorAssert.Close(ga, gb, 1e-7, $"clipped gradient {i}");
        }
    }

    [Fact]
    public void ParametersWithoutGradients_AreSkipped()
    {
        var ps = ParametersWithGradients(5);
        double expected = ReferenceNorm(ps.Select(Values));
        using var noGrad = new Parameter(torch.ones(4));
        double norm = GradientClipping.ClipByTotalNorm([.. ps, noGrad], 1e9);
        Assert.True(Math.Abs(norm - expected) <= 1e-6 * expected);
        Assert.Null(noGrad.grad);
        Assert.Equal(0.0, GradientClipping.ClipByTotalNorm([noGrad], 1.0));
    }

    [Fact]
    public void NonFiniteNorm_ThrowsByDefault_AndLeavesGradientsAsTheyWere()
    {
        var ps = ParametersWithGradients(3);
        using (Tensor g = ps[1].grad!) g[2] = torch.tensor(float.NaN);
        var e = Assert.Throws<InvalidOperationException>(() => GradientClipping.ClipByTotalNorm(ps, 1.0));
        Assert.Contains("non-finite", e.Message);
        Assert.True(Values(ps[0]).All(double.IsFinite));
        double norm = GradientClipping.ClipByTotalNorm(ps, 1.0, errorIfNonFinite: false);
        Assert.True(double.IsNaN(norm));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    public void NonPositiveMaxNorm_IsRejected(double maxNorm)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipByTotalNorm([], maxNorm));
        Assert.Equal("maxNorm", e.ParamName);
    }
}
