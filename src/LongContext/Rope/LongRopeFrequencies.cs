using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>HF <c>_compute_longrope_parameters</c> (LongRoPE, Phi-3).</summary>
internal static class LongRopeFrequencies
{
    /// <summary>
    /// <c>1 / (ext * theta^(2i/d))</c> with <c>ext</c> the long factors when <paramref name="sequenceLength"/> exceeds
    /// the original window, else the short ones; attention factor <c>sqrt(1 + ln f / ln original)</c> unless set.
    /// </summary>
    public static (Tensor, double) Build(RopeParameters p, int dim, int maxPositionEmbeddings, long? sequenceLength)
    {
        int original = p.OriginalWindow(maxPositionEmbeddings);
        double attention = p.AttentionFactor
            ?? (p.Factor <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(p.Factor) / Math.Log(original)));
        IReadOnlyList<double> factors = sequenceLength is long s && s > original ? p.LongFactor! : p.ShortFactor!;
        Tensor ext = tensor(factors.Select(v => (float)v).ToArray());
        Tensor inv = ext.mul(RopeFrequencyMath.Power(p.Theta, RopeFrequencyMath.Exponents(dim))).reciprocal();
        return (inv, attention);
    }
}
