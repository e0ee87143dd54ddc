using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>
/// Builds inverse frequencies and the attention scaling for each <see cref="RopeType"/>, number for number as HF
/// transformers' <c>ROPE_INIT_FUNCTIONS</c> (<c>modeling_rope_utils.py</c>, v5): the same float32 operations in the
/// same order, with the scalar parts (YaRN correction range, Llama 3 band edges, attention factors) in float64 as
/// Python computes them. Pure functions; one builder per rope type.
/// </summary>
public static class RopeFrequencyBuilder
{
    /// <summary>
    /// Inverse frequencies (float32, rotaryDim/2, CPU; the caller owns the tensor) and the attention scaling.
    /// </summary>
    /// <param name="p">The rope configuration; validated here.</param>
    /// <param name="headDim">Attention head dimension (rotaryDim = <c>p.RotaryDim(headDim)</c>).</param>
    /// <param name="maxPositionEmbeddings">The model's <c>max_position_embeddings</c>.</param>
    /// <param name="sequenceLength">
    /// The current sequence length (HF's <c>seq_len</c>: largest position id + 1). Used by
    /// <see cref="RopeType.Dynamic"/> (the NTK base grows past <paramref name="maxPositionEmbeddings"/>; HF computes
    /// that base in float32 from a tensor, and so does this) and <see cref="RopeType.LongRope"/> (long factors past
    /// the original window); ignored by the other types, which do not depend on it. <see langword="null"/> is the
    /// state at construction.
    /// </param>
    /// <exception cref="ArgumentException">A field of <paramref name="p"/> is invalid (named in the message).</exception>
    public static RopeFrequencies Build(RopeParameters p, int headDim, int maxPositionEmbeddings, long? sequenceLength = null)
    {
        ArgumentNullException.ThrowIfNull(p);
        p.Validate(headDim, maxPositionEmbeddings);
        if (sequenceLength is long s && s <= 0)
            throw new ArgumentOutOfRangeException(nameof(sequenceLength), s, $"sequenceLength must be positive; got {s}.");
        int dim = p.RotaryDim(headDim);
        using var scope = NewDisposeScope();
        (Tensor inv, double scaling) = p.Type switch
        {
            RopeType.Default => (RopeFrequencyMath.DefaultInverseFrequencies(p.Theta, dim), 1.0),
            RopeType.Linear => (RopeFrequencyMath.DefaultInverseFrequencies(p.Theta, dim).div(p.Factor), 1.0),
            RopeType.Dynamic => (DynamicNtkFrequencies.Build(p, dim, maxPositionEmbeddings, sequenceLength), 1.0),
            RopeType.Yarn => YarnFrequencies.Build(p, dim, maxPositionEmbeddings),
            RopeType.LongRope => LongRopeFrequencies.Build(p, dim, maxPositionEmbeddings, sequenceLength),
            RopeType.Llama3 => (Llama3Frequencies.Build(p, dim, maxPositionEmbeddings), 1.0),
            _ => throw new ArgumentOutOfRangeException(nameof(p), p.Type, $"Unknown rope type {p.Type}."),
        };
        return new RopeFrequencies(inv.contiguous().MoveToOuterDisposeScope(), scaling);
    }
}
