namespace LongContext.Attention;

/// <summary>How the shifted half of the heads treats the half groups at both ends of the sequence in S2-Attn.</summary>
public enum S2WrapPolicy
{
    /// <summary>
    /// LongLoRA's flash/varlen path (the default): the shifted heads attend causally inside the segments
    /// [0, G/2), [G/2 + iG, G/2 + (i+1)G) and [N - G/2, N). Nothing wraps around, so no token ever sees a later one.
    /// </summary>
    NoWrap,

    /// <summary>
    /// LongLoRA's eager path: the shifted heads are rolled by -G/2 along the sequence before grouping and rolled
    /// back after, so their last group holds the tokens [N - G/2, N) followed by [0, G/2), causal in that order: the
    /// first G/2 tokens see the last G/2 tokens of the sequence (a leak of future tokens, LongLoRA issues #15, #90).
    /// Kept for exact reproduction of models trained with that code.
    /// </summary>
    Roll,
}
