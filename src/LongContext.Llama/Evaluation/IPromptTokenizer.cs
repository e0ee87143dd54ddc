namespace LongContext.Llama.Evaluation;

/// <summary>
/// Text to token ids for the passkey test, as HF's <c>tokenizer(text).input_ids</c> gives them (the BOS token first
/// when the tokenizer adds one). Adapt the LongContext.Text tokenizers (or any other) with a small class.
/// </summary>
public interface IPromptTokenizer
{
    /// <summary>The ids of <paramref name="text"/>, special tokens included as the tokenizer adds them by default.</summary>
    /// <param name="text">Text to encode.</param>
    IReadOnlyList<long> Encode(string text);

    /// <summary>The id the tokenizer puts first (BOS), or null when it adds none.</summary>
    long? BosTokenId { get; }
}
