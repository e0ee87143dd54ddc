namespace LongContext.Rope;

/// <summary>Options of a <see cref="RotaryEmbedding"/>.</summary>
/// <param name="HeadDim">Attention head dimension D (q and k are (B, H, N, D)).</param>
/// <param name="MaxPositionEmbeddings">The model's <c>max_position_embeddings</c> (the dynamic NTK window; the default original window of YaRN / LongRoPE / Llama 3).</param>
/// <param name="Parameters">The rope configuration.</param>
/// <param name="Layout">Pair layout of the head dimension: <see cref="RotaryLayout.HalfSplit"/> for HF checkpoints, <see cref="RotaryLayout.Interleaved"/> for Meta / GPT-J weights.</param>
public sealed record RotaryEmbeddingOptions(int HeadDim, int MaxPositionEmbeddings, RopeParameters Parameters,
    RotaryLayout Layout = RotaryLayout.HalfSplit)
{
    /// <summary>
    /// Optional hard limit: position ids at or past it throw instead of growing the cos/sin cache (for deployments
    /// that must not extrapolate past a trained window). <see langword="null"/> (the default) grows on demand.
    /// </summary>
    public long? PositionLimit { get; init; }

    /// <summary>Checks every field; throws an <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Parameters);
        Parameters.Validate(HeadDim, MaxPositionEmbeddings);
        if (!Enum.IsDefined(Layout))
            throw new ArgumentOutOfRangeException(nameof(Layout), Layout, $"Layout must be HalfSplit or Interleaved; got {(int)Layout}.");
        if (PositionLimit is long limit && limit <= 0)
            throw new ArgumentOutOfRangeException(nameof(PositionLimit), limit, $"PositionLimit must be positive when set; got {limit}.");
    }
}
