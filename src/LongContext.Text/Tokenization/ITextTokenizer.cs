namespace LongContext.Text.Tokenization;

/// <summary>
/// The tokenizer contract the rest of LongContext uses: text to token ids and back, the special ids, the vocabulary
/// size and incremental decoding for streaming (<see cref="IncrementalDecoder"/>). Implementations are safe to call
/// from several threads at once. <see cref="HfTokenizer"/> loads one from a Hugging Face checkpoint folder.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>Number of token ids: one more than the largest id (model vocabulary and added tokens).</summary>
    int VocabSize { get; }

    /// <summary>BOS, EOS, padding and unknown ids, and the ids that end generation.</summary>
    SpecialTokenIds SpecialTokens { get; }

    /// <summary>
    /// Encodes text. With <paramref name="addSpecialTokens"/> (the HF default) the tokenizer's own template is
    /// applied: BOS first for Llama-family tokenizers, plus EOS where the folder asks for it.
    /// </summary>
    /// <param name="text">The text; any string of valid UTF-16 (lone surrogates are rejected).</param>
    /// <param name="addSpecialTokens">Whether to add the template's special tokens (BOS/EOS).</param>
    /// <returns>The token ids, each in [0, <see cref="VocabSize"/>).</returns>
    /// <exception cref="ArgumentException">The text is not valid UTF-16.</exception>
    int[] Encode(string text, bool addSpecialTokens = true);

    /// <summary>
    /// Whether <see cref="Decode"/> runs <see cref="TokenizationSpaces.CleanUp"/> on the text unless told otherwise
    /// (transformers' <c>clean_up_tokenization_spaces</c>, as the tokenizer's files set it).
    /// </summary>
    bool CleanUpTokenizationSpaces { get; }

    /// <summary>Decodes token ids to text, as HF's <c>decode</c> does.</summary>
    /// <param name="ids">Token ids, each in [0, <see cref="VocabSize"/>).</param>
    /// <param name="skipSpecialTokens">Drop special tokens (BOS, EOS, ...) instead of rendering them.</param>
    /// <param name="cleanUpTokenizationSpaces">
    /// Run <see cref="TokenizationSpaces.CleanUp"/> on the text (transformers' <c>decode(...,
    /// clean_up_tokenization_spaces=...)</c>); null: <see cref="CleanUpTokenizationSpaces"/>. An explicit value is
    /// applied as given, as transformers 4.x did; transformers 5.7 and later ignore an explicit true for a BPE
    /// tokenizer (with a warning) unless <c>clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output</c> is set.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside [0, <see cref="VocabSize"/>).</exception>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null);

    /// <summary>The token string of an id as the vocabulary spells it (<c>▁the</c>, <c>Ġthe</c>, <c>&lt;0x0A&gt;</c>, <c>&lt;s&gt;</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside [0, <see cref="VocabSize"/>) or names no token.</exception>
    string IdToToken(int id);

    /// <summary>Whether an id is a special token (skipped by <see cref="Decode"/> with <c>skipSpecialTokens</c>).</summary>
    bool IsSpecial(int id);
}
