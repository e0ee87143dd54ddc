namespace LongContext.Text.Corpus;

/// <summary>One training row: <see cref="InputIds"/> of length L whose first <see cref="Length"/> entries are tokens and the rest padding.</summary>
/// <param name="InputIds">L ids (padding positions hold the pad id).</param>
/// <param name="Length">Number of real tokens, 1..L; labels are -100 and the attention mask 0 from here on.</param>
public sealed record PackedRow(int[] InputIds, int Length);
