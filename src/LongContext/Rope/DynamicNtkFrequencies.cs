using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>HF <c>_compute_dynamic_ntk_parameters</c>: the base grows with the sequence past max_position_embeddings.</summary>
internal static class DynamicNtkFrequencies
{
    /// <summary>
    /// <c>base' = theta * (factor * L / max - (factor - 1)) ^ (dim / (dim - 2))</c>, <c>L = max(seq, max)</c>. At
    /// construction (no length) HF evaluates it in float64 Python arithmetic; during the dynamic update its
    /// <c>seq_len</c> is an int64 tensor and the same expression runs in float32: both are reproduced.
    /// </summary>
    public static Tensor Build(RopeParameters p, int dim, int maxPositionEmbeddings, long? sequenceLength)
    {
        double exponent = dim / (double)(dim - 2);
        Tensor exps = RopeFrequencyMath.Exponents(dim);
        if (sequenceLength is not long seq)
        {
            double scaledBase = p.Theta * Math.Pow(p.Factor * maxPositionEmbeddings / maxPositionEmbeddings - (p.Factor - 1), exponent);
            return RopeFrequencyMath.Power(scaledBase, exps).reciprocal();
        }
        Tensor length = tensor(Math.Max(seq, maxPositionEmbeddings), dtype: ScalarType.Int64);
        Tensor baseTensor = length.mul(p.Factor).div(maxPositionEmbeddings).sub(p.Factor - 1).pow(exponent).mul(p.Theta);
        return baseTensor.pow(exps).reciprocal();
    }
}
