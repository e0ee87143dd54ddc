using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>HF <c>_compute_yarn_parameters</c> (YaRN, arXiv 2309.00071).</summary>
internal static class YarnFrequencies
{
    /// <summary>Inverse frequencies blended between interpolation and extrapolation by a linear ramp, and the attention factor.</summary>
    public static (Tensor, double) Build(RopeParameters p, int dim, int maxPositionEmbeddings)
    {
        double factor = p.Factor;
        int original = p.OriginalWindow(maxPositionEmbeddings);
        double attention = AttentionFactor(p);
        double betaFast = p.BetaFast ?? RopeKeys.DefaultBetaFast;
        double betaSlow = p.BetaSlow ?? RopeKeys.DefaultBetaSlow;

        Tensor posFreqs = RopeFrequencyMath.Power(p.Theta, RopeFrequencyMath.Exponents(dim));
        Tensor extrapolation = posFreqs.reciprocal();
        Tensor interpolation = posFreqs.mul(factor).reciprocal();

        (double low, double high) = CorrectionRange(betaFast, betaSlow, dim, p.Theta, original, p.Truncate ?? RopeKeys.DefaultTruncate);
        if (low == high) high += 0.001; // HF: prevent a singular ramp
        Tensor ramp = arange(dim / 2, dtype: ScalarType.Float32).sub(low).div(high - low).clamp(0, 1);
        Tensor extrapolationFactor = ramp.neg().add(1); // 1 - ramp
        return (interpolation.mul(extrapolationFactor.neg().add(1)).add(extrapolation.mul(extrapolationFactor)), attention);
    }

    /// <summary>
    /// The attention factor: <see cref="RopeParameters.AttentionFactor"/> if set; else, when both mscale and
    /// mscale_all_dim are set, <c>m(f, mscale) / m(f, mscale_all_dim)</c>; else <c>m(f, 1)</c>, with
    /// <c>m(s, k) = s &lt;= 1 ? 1 : 0.1 k ln s + 1</c>.
    /// </summary>
    public static double AttentionFactor(RopeParameters p)
    {
        if (p.AttentionFactor is double a) return a;
        if (p.Mscale is double m && p.MscaleAllDim is double mAll)
            return GetMscale(p.Factor, m) / GetMscale(p.Factor, mAll);
        return GetMscale(p.Factor, 1);
    }

    private static double GetMscale(double scale, double mscale) => scale <= 1 ? 1.0 : 0.1 * mscale * Math.Log(scale) + 1.0;

    private static double CorrectionDim(double rotations, int dim, double theta, int original)
        => dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));

    private static (double Low, double High) CorrectionRange(double lowRot, double highRot, int dim, double theta, int original, bool truncate)
    {
        double low = CorrectionDim(lowRot, dim, theta, original);
        double high = CorrectionDim(highRot, dim, theta, original);
        if (truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        return (Math.Max(low, 0), Math.Min(high, dim - 1));
    }
}
