using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>HF <c>_compute_llama3_parameters</c> (Llama 3.1 frequency smoothing).</summary>
internal static class Llama3Frequencies
{
    /// <summary>
    /// Wavelengths above <c>original / low_freq_factor</c> are divided by factor, those below
    /// <c>original / high_freq_factor</c> kept, and the band between blended smoothly.
    /// </summary>
    public static Tensor Build(RopeParameters p, int dim, int maxPositionEmbeddings)
    {
        double factor = p.Factor, low = p.LowFreqFactor!.Value, high = p.HighFreqFactor!.Value;
        double old = p.OriginalWindow(maxPositionEmbeddings);
        double lowFreqWavelength = old / low, highFreqWavelength = old / high;

        Tensor inv = RopeFrequencyMath.DefaultInverseFrequencies(p.Theta, dim);
        Tensor wavelength = inv.reciprocal().mul(2 * Math.PI);                 // 2*pi / inv_freq
        Tensor scaled = where(wavelength.gt(lowFreqWavelength), inv.div(factor), inv);
        Tensor smooth = wavelength.reciprocal().mul(old).sub(low).div(high - low); // (old / wavelen - low) / (high - low)
        Tensor smoothed = smooth.neg().add(1).mul(scaled).div(factor).add(smooth.mul(scaled));
        Tensor medium = wavelength.lt(highFreqWavelength).logical_not().logical_and(wavelength.gt(lowFreqWavelength).logical_not());
        return where(medium, smoothed, scaled);
    }
}
