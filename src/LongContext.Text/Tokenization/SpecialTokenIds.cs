namespace LongContext.Text.Tokenization;

/// <summary>
/// The special token ids of a tokenizer. <see cref="Bos"/>, <see cref="Eos"/>, <see cref="Pad"/> and
/// <see cref="Unk"/> are null where the folder defines none (Llama-2 has no padding token).
/// </summary>
/// <param name="Bos">Beginning of sequence.</param>
/// <param name="Eos">End of sequence: what packing appends after each document.</param>
/// <param name="Pad">Padding, or null.</param>
/// <param name="Unk">Unknown token, or null.</param>
/// <param name="StopIds">The ids that end generation: <c>generation_config.json</c>'s <c>eos_token_id</c> (one id or
/// a list), else <c>config.json</c>'s, else <see cref="Eos"/>; empty when none is known.</param>
public sealed record SpecialTokenIds(int? Bos, int? Eos, int? Pad, int? Unk, IReadOnlyList<int> StopIds);
