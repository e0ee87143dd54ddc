using LongContext.Rope;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Rope;

/// <summary>
/// The frequency builders against closed forms computed here in float64 from the papers' / HF's formulas
/// (RoPE, YaRN arXiv 2309.00071 with HF's conventions, Llama 3.1, LongRoPE, dynamic NTK). The builders work in float32
/// as HF does: inverse frequencies agree to 1e-6 relative, attention factors (float64 scalars) to 1e-12.
/// </summary>
[Trait(Category.Name, Category.Rope)]
public sealed class RopeClosedFormTests
{
    private const double FrequencyTolerance = 1e-6;

    private static double[] DefaultFrequencies(double theta, int dim)
        => Enumerable.Range(0, dim / 2).Select(i => Math.Pow(theta, -2.0 * i / dim)).ToArray();

    [Fact]
    public void Default_IsThetaToTheMinusTwoIOverD()
    {
        using var scope = NewDisposeScope();
        var built = RopeFrequencyBuilder.Build(RopeParameters.Default(500000), 128, 8192);
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(DefaultFrequencies(500000, 128)), FrequencyTolerance, "default theta 5e5, d 128");
        Assert.Equal(1.0, built.AttentionScaling);
    }

    [Fact]
    public void Linear_DividesEveryFrequencyByTheFactor()
    {
        using var scope = NewDisposeScope();
        var built = RopeFrequencyBuilder.Build(RopeParameters.Linear(4), 64, 2048);
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(DefaultFrequencies(10000, 64).Select(f => f / 4).ToArray()), FrequencyTolerance, "linear 4");
    }

    /// <summary>A YaRN case: the parameters and the head dimension.</summary>
    public sealed record YarnCase(RopeParameters P, int HeadDim);

    private static readonly Dictionary<string, YarnCase> YarnCases = new()
    {
        ["truncated correction range (default)"] = new(new RopeParameters { Type = RopeType.Yarn, Factor = 40, OriginalMaxPositionEmbeddings = 4096 }, 64),
        ["truncate = false"] = new(new RopeParameters { Type = RopeType.Yarn, Factor = 40, OriginalMaxPositionEmbeddings = 4096, Truncate = false }, 64),
        ["explicit attention_factor"] = new(new RopeParameters { Type = RopeType.Yarn, Factor = 8, OriginalMaxPositionEmbeddings = 2048, AttentionFactor = 1.5 }, 64),
        ["mscale != mscale_all_dim"] = new(new RopeParameters { Type = RopeType.Yarn, Factor = 40, OriginalMaxPositionEmbeddings = 4096, Mscale = 1.0, MscaleAllDim = 0.5, Truncate = false }, 64),
        ["mscale = mscale_all_dim (DeepSeek)"] = new(new RopeParameters { Type = RopeType.Yarn, Factor = 40, OriginalMaxPositionEmbeddings = 4096, Mscale = 0.707, MscaleAllDim = 0.707 }, 64),
        ["partial_rotary_factor 0.5"] = new(new RopeParameters { Type = RopeType.Yarn, Factor = 4, OriginalMaxPositionEmbeddings = 1024, PartialRotaryFactor = 0.5 }, 128),
        ["partial_rotary_factor 0.25, not truncated"] = new(new RopeParameters { Type = RopeType.Yarn, Factor = 16, OriginalMaxPositionEmbeddings = 8192, PartialRotaryFactor = 0.25, Truncate = false, Theta = 1e6 }, 128),
        ["beta_fast 16, beta_slow 2, theta 5e5"] = new(new RopeParameters { Type = RopeType.Yarn, Factor = 4, OriginalMaxPositionEmbeddings = 8192, BetaFast = 16, BetaSlow = 2, Theta = 500000 }, 128),
    };

    public static TheoryData<string> YarnCaseNames() => new(YarnCases.Keys);

    /// <summary>
    /// YaRN in float64: d = (int)(headDim * partial); correction dim of r rotations d ln(L / (2 pi r)) / (2 ln theta)
    /// for L the original window; low from beta_fast, high from beta_slow (floor / ceil when truncating), clamped to
    /// [0, d - 1]; ramp_i = clamp((i - low) / (high - low), 0, 1); inv_i = theta^(-2i/d) (ramp_i / factor + 1 - ramp_i).
    /// </summary>
    private static double[] YarnFrequencies(RopeParameters p, int headDim)
    {
        int d = (int)(headDim * p.PartialRotaryFactor), original = p.OriginalMaxPositionEmbeddings!.Value;
        double CorrectionDim(double rotations) => d * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(p.Theta));
        double low = CorrectionDim(p.BetaFast ?? 32), high = CorrectionDim(p.BetaSlow ?? 1);
        if (p.Truncate ?? true) { low = Math.Floor(low); high = Math.Ceiling(high); }
        low = Math.Max(low, 0);
        high = Math.Min(high, d - 1);
        if (low == high) high += 0.001;
        return Enumerable.Range(0, d / 2).Select(i =>
        {
            double extrapolation = Math.Pow(p.Theta, -2.0 * i / d), ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            return extrapolation / p.Factor * ramp + extrapolation * (1 - ramp);
        }).ToArray();
    }

    /// <summary>attention_factor if set; else m(f, mscale) / m(f, mscale_all_dim) when both are set; else m(f, 1); m(s, k) = 0.1 k ln s + 1 (1 for s &lt;= 1).</summary>
    private static double YarnAttentionFactor(RopeParameters p)
    {
        double M(double k) => p.Factor <= 1 ? 1 : 0.1 * k * Math.Log(p.Factor) + 1;
        return p.AttentionFactor ?? (p.Mscale is double m && p.MscaleAllDim is double all ? M(m) / M(all) : M(1));
    }

    [Theory]
    [MemberData(nameof(YarnCaseNames))]
    public void Yarn_FrequenciesMatchTheRampedBlend(string name)
    {
        var (p, headDim) = YarnCases[name];
        using var scope = NewDisposeScope();
        var built = RopeFrequencyBuilder.Build(p, headDim, 65536);
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(YarnFrequencies(p, headDim)), FrequencyTolerance, $"yarn {name}");
    }

    [Theory]
    [MemberData(nameof(YarnCaseNames))]
    public void Yarn_AttentionScalingMatchesTheMscaleFormula(string name)
    {
        var (p, headDim) = YarnCases[name];
        using var scope = NewDisposeScope();
        Assert.Equal(YarnAttentionFactor(p), RopeFrequencyBuilder.Build(p, headDim, 65536).AttentionScaling, 12);
    }

    [Fact]
    public void Yarn_UntruncatedRangeDiffersFromTheTruncatedOne()
    {
        // guards the truncate = false cases above against a builder that ignores the flag
        var truncated = YarnFrequencies(YarnCases["truncated correction range (default)"].P, 64);
        var untruncated = YarnFrequencies(YarnCases["truncate = false"].P, 64);
        Assert.Contains(truncated.Zip(untruncated), t => Math.Abs(t.First - t.Second) > 1e-3 * t.First);
    }

    [Theory]
    [InlineData("Llama 3.1 (factor 8, low 1, high 4, window 8192)", 8, 1, 4, 8192, 1.0)]
    [InlineData("factor 32, low 2, high 8, window 4096, partial 0.5", 32, 2, 8, 4096, 0.5)]
    public void Llama3_FrequenciesMatchTheBandedSmoothing(string name, double factor, double low, double high, int window, double partial)
    {
        using var scope = NewDisposeScope();
        var p = RopeParameters.Llama3(factor, low, high, window) with { PartialRotaryFactor = partial };
        var built = RopeFrequencyBuilder.Build(p, 128, 131072);
        int d = (int)(128 * partial);
        var expected = DefaultFrequencies(500000, d).Select(f =>
        {
            double wavelength = 2 * Math.PI / f, smooth = (window / wavelength - low) / (high - low);
            return wavelength < window / high ? f : wavelength > window / low ? f / factor : (1 - smooth) * f / factor + smooth * f;
        }).ToArray();
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(expected), FrequencyTolerance, name);
        Assert.Equal(1.0, built.AttentionScaling);
    }

    [Theory]
    [InlineData("within the window: short factors", 4096, false)]
    [InlineData("one past the window: long factors", 4097, true)]
    public void LongRope_PicksTheFactorsByLength(string name, long length, bool useLong)
    {
        using var scope = NewDisposeScope();
        double[] shortF = [1, 1.5, 2, 3], longF = [1, 2, 4, 8];
        var built = RopeFrequencyBuilder.Build(RopeParameters.LongRope(shortF, longF, 4096, 32), 8, 131072, length);
        double[] ext = useLong ? longF : shortF;
        var expected = DefaultFrequencies(10000, 8).Select((f, i) => f / ext[i]).ToArray();
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(expected), FrequencyTolerance, name);
    }

    [Theory]
    [InlineData("factor 32 over window 4096", 32.0, null)]
    [InlineData("explicit attention_factor", 32.0, 1.25)]
    [InlineData("factor 1: no scaling", 1.0, null)]
    public void LongRope_AttentionScalingIsSqrtOfOnePlusLnFactorOverLnWindow(string name, double factor, double? attentionFactor)
    {
        using var scope = NewDisposeScope();
        var p = RopeParameters.LongRope([1, 1, 1, 1], [1, 2, 4, 8], 4096, factor) with { AttentionFactor = attentionFactor };
        double expected = attentionFactor ?? (factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(4096)));
        Assert.True(Math.Abs(expected - RopeFrequencyBuilder.Build(p, 8, 131072).AttentionScaling) < 1e-12, name);
    }

    [Theory]
    [InlineData("at construction: the window itself", null, 256L)]
    [InlineData("a length inside the window: unchanged", 200L, 256L)]
    [InlineData("a length past the window: grown base", 1000L, 1000L)]
    public void Dynamic_BaseIsThetaTimesTheNtkScaleOfTheLength(string name, long? length, long effective)
    {
        using var scope = NewDisposeScope();
        var built = RopeFrequencyBuilder.Build(RopeParameters.Dynamic(4), 16, 256, length);
        // base' = theta (f L / max - (f - 1))^(d / (d - 2)), L = max(length, max)
        double b = 10000 * Math.Pow(4.0 * effective / 256 - 3, 16.0 / 14);
        TensorAssert.RelativeClose(built.InverseFrequencies, tensor(DefaultFrequencies(b, 16)), FrequencyTolerance, name);
    }
}
