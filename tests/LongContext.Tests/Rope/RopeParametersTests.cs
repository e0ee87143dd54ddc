using LongContext.Rope;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Rope;

/// <summary>Validation messages and the frequency builders' closed forms (float64 references).</summary>
[Trait(Category.Name, Category.Rope)]
public sealed class RopeParametersTests
{
    [Fact]
    public void FactorBelowOne_ThrowsNamingFactorAndValue()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => RopeParameters.Linear(0.5));
        Assert.Equal("Factor", ex.ParamName);
        Assert.Contains("0.5", ex.Message);
        Assert.Contains(">= 1", ex.Message);
    }

    [Fact]
    public void MissingRequiredFields_ThrowNamingThem()
    {
        var llama = new RopeParameters { Type = RopeType.Llama3, Factor = 8, HighFreqFactor = 4 };
        Assert.Equal("LowFreqFactor", Assert.Throws<ArgumentException>(() => llama.Validate(64, 1024)).ParamName);
        var longRope = new RopeParameters { Type = RopeType.LongRope, ShortFactor = new double[8] };
        Assert.Equal("LongFactor", Assert.Throws<ArgumentException>(() => longRope.Validate(16, 1024)).ParamName);
    }

    [Fact]
    public void FactorListOfWrongLength_ThrowsNamingListAndLengths()
    {
        double[] eight = Enumerable.Repeat(1.0, 8).ToArray(), seven = Enumerable.Repeat(1.0, 7).ToArray();
        var p = RopeParameters.LongRope(eight, seven, 256, 4);
        var ex = Assert.Throws<ArgumentException>(() => p.Validate(16, 1024));
        Assert.Equal("LongFactor", ex.ParamName);
        Assert.Contains("8", ex.Message);
        Assert.Contains("got 7", ex.Message);
        var shortEx = Assert.Throws<ArgumentException>(() => RopeFrequencyBuilder.Build(p with { ShortFactor = seven, LongFactor = eight }, 16, 1024));
        Assert.Equal("ShortFactor", shortEx.ParamName);
    }

    [Theory]
    [InlineData(15, 1.0, "15")]
    [InlineData(16, 0.3125, "= 5")]
    public void OddRotatedDimension_ThrowsNamingHeadDim(int headDim, double partial, string shown)
    {
        var p = RopeParameters.Default() with { PartialRotaryFactor = partial };
        var ex = Assert.Throws<ArgumentException>(() => new RotaryEmbedding(new RotaryEmbeddingOptions(headDim, 128, p)));
        Assert.Equal("headDim", ex.ParamName);
        Assert.Contains(shown, ex.Message);
        Assert.Contains("even", ex.Message);
    }

    [Fact]
    public void FieldUnusedByTheType_ThrowsInsteadOfBeingIgnored()
    {
        var ex = Assert.Throws<ArgumentException>(() => (RopeParameters.Linear(2) with { BetaFast = 16 }).Validate(16, 128));
        Assert.Equal("BetaFast", ex.ParamName);
        Assert.Contains("Linear", ex.Message);
        var def = Assert.Throws<ArgumentException>(() => new RopeParameters { Factor = 4 }.Validate(16, 128));
        Assert.Equal("Factor", def.ParamName);
        var dyn = Assert.Throws<ArgumentException>(() => (RopeParameters.Dynamic(2) with { OriginalMaxPositionEmbeddings = 64 }).Validate(16, 128));
        Assert.Equal("OriginalMaxPositionEmbeddings", dyn.ParamName);
    }

    [Fact]
    public void Llama3_HighNotAboveLow_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => RopeParameters.Llama3(8, 4, 4, 8192));
        Assert.Equal("HighFreqFactor", ex.ParamName);
    }

    [Fact]
    public void Default_MatchesFloat64ClosedForm()
    {
        using var scope = NewDisposeScope();
        var built = RopeFrequencyBuilder.Build(RopeParameters.Default(500000), 128, 8192);
        var expected = Enumerable.Range(0, 64).Select(i => Math.Pow(500000, -2.0 * i / 128)).ToArray();
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(expected), 1e-6, "default theta 5e5, d 128");
        Assert.Equal(1.0, built.AttentionScaling);
    }

    [Theory]
    [InlineData(true, null, null)]
    [InlineData(false, null, null)]
    [InlineData(true, 0.707, 0.707)]
    [InlineData(false, 1.0, 0.5)]
    public void Yarn_MatchesFloat64Formula(bool truncate, double? mscale, double? mscaleAllDim)
    {
        using var scope = NewDisposeScope();
        var p = new RopeParameters
        {
            Type = RopeType.Yarn, Factor = 40, OriginalMaxPositionEmbeddings = 4096, Theta = 10000, BetaFast = 32, BetaSlow = 1,
            Truncate = truncate, Mscale = mscale, MscaleAllDim = mscaleAllDim,
        };
        var built = RopeFrequencyBuilder.Build(p, 64, 163840);
        // float64 YaRN (arXiv 2309.00071, HF conventions): correction dims, linear ramp, blend.
        int d = 64;
        double Dim(double rot) => d * Math.Log(4096 / (rot * 2 * Math.PI)) / (2 * Math.Log(10000));
        double low = Dim(32), high = Dim(1);
        if (truncate) { low = Math.Floor(low); high = Math.Ceiling(high); }
        low = Math.Max(low, 0); high = Math.Min(high, d - 1);
        var expected = new double[d / 2];
        for (int i = 0; i < d / 2; i++)
        {
            double extrapolation = Math.Pow(10000, -2.0 * i / d), ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            expected[i] = extrapolation / 40 * ramp + extrapolation * (1 - ramp);
        }
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(expected), 1e-6, $"yarn truncate={truncate}");
        double M(double k) => 0.1 * k * Math.Log(40) + 1;
        double scaling = mscale is double m && mscaleAllDim is double ma ? M(m) / M(ma) : M(1);
        Assert.Equal(scaling, built.AttentionScaling, 12);
    }

    [Fact]
    public void Llama3_MatchesFloat64Formula()
    {
        using var scope = NewDisposeScope();
        var built = RopeFrequencyBuilder.Build(RopeParameters.Llama3(8, 1, 4, 8192), 128, 131072);
        var expected = new double[64];
        for (int i = 0; i < 64; i++)
        {
            double f = Math.Pow(500000, -2.0 * i / 128), wavelength = 2 * Math.PI / f;
            double smooth = (8192 / wavelength - 1) / (4 - 1);
            expected[i] = wavelength < 8192 / 4.0 ? f : wavelength > 8192 / 1.0 ? f / 8 : (1 - smooth) * f / 8 + smooth * f;
        }
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(expected), 1e-6, "llama 3.1");
    }

    [Fact]
    public void LongRope_UsesLongFactorsPastTheWindowAndTheDefaultAttentionFactor()
    {
        using var scope = NewDisposeScope();
        double[] shortF = [1, 1, 1, 1], longF = [1, 2, 4, 8];
        var p = RopeParameters.LongRope(shortF, longF, 4096, 32);
        var shortBuilt = RopeFrequencyBuilder.Build(p, 8, 131072, 4096);
        var longBuilt = RopeFrequencyBuilder.Build(p, 8, 131072, 4097);
        TensorAssert.RelativeClose(shortBuilt.InverseFrequencies, tensor(Enumerable.Range(0, 4).Select(i => Math.Pow(10000, -2.0 * i / 8)).ToArray()), 1e-6, "short");
        TensorAssert.RelativeClose(longBuilt.InverseFrequencies, tensor(Enumerable.Range(0, 4).Select(i => Math.Pow(10000, -2.0 * i / 8) / longF[i]).ToArray()), 1e-6, "long");
        Assert.Equal(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), longBuilt.AttentionScaling, 12);
    }
}
