namespace LongContext.Attention;

/// <summary>Which attention pattern an <see cref="AttentionCore"/> or <see cref="AttentionFunctions.Compute"/> uses.</summary>
public enum AttentionMode
{
    /// <summary>Ordinary causal attention over the whole sequence: the inference path and the baseline.</summary>
    Full,

    /// <summary>
    /// LongLoRA's shifted sparse attention (S2-Attn): causal attention inside groups of G = N * ratio tokens, with
    /// the second half of the heads shifted by G/2. The training path.
    /// </summary>
    ShiftedSparse,
}
