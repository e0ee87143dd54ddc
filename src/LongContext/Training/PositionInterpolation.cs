namespace LongContext.Training;

/// <summary>
/// Position Interpolation (Chen et al., 2023) as LongLoRA applies it: positions are divided by an integer factor
/// so a model trained on <c>original</c> tokens sees a <c>target</c>-token context inside its trained range.
/// </summary>
public static class PositionInterpolation
{
    /// <summary>
    /// The linear rope scaling factor for a target context: <c>ceil(target / original)</c>, and 1 when the
    /// target fits in the original window (LongLoRA's rule).
    /// </summary>
    /// <param name="targetContextLength">Context length to train and run at, positive.</param>
    /// <param name="originalContextLength">The model's trained context length, positive.</param>
    /// <returns>An integer factor of at least 1.</returns>
    public static int Factor(int targetContextLength, int originalContextLength)
    {
        Guard.Positive(targetContextLength);
        Guard.Positive(originalContextLength);
        return targetContextLength <= originalContextLength
            ? 1
            : (int)((targetContextLength + (long)originalContextLength - 1) / originalContextLength);
    }
}
