namespace LongContext.Rope;

/// <summary>
/// How the rotated pairs sit in the head dimension. HF transformers checkpoints (Llama, Mistral, Qwen, Phi, NeoX...)
/// need <see cref="HalfSplit"/>: HF's conversion script permutes Meta's q/k weights for it. Meta's original
/// <c>consolidated.*.pth</c> weights and GPT-J need <see cref="Interleaved"/>. Nothing guesses it for you.
/// </summary>
public enum RotaryLayout
{
    /// <summary>Pair (i, i + r/2) for i &lt; r/2 (HF <c>rotate_half(x) = cat(-x2, x1)</c>); cos/sin laid out as <c>cat(f, f)</c>.</summary>
    HalfSplit,
    /// <summary>Pair (2i, 2i + 1) (GPT-J, Meta's complex form); cos/sin laid out as <c>repeat_interleave(f, 2)</c>.</summary>
    Interleaved,
}
