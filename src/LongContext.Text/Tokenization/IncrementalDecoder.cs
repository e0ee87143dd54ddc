namespace LongContext.Text.Tokenization;

/// <summary>
/// Turns a stream of token ids into text pieces as they arrive, for streaming generation. Characters come out whole:
/// a character spread over several byte-fallback (<c>&lt;0xE2&gt;&lt;0x82&gt;&lt;0xAC&gt;</c>) or byte-level tokens is
/// held back until its last byte arrives, and the decoder's context rules (Llama's leading-space strip, spaces
/// before a word) are applied as a whole decode would apply them: the pieces returned by <see cref="Append"/> and
/// <see cref="Flush"/> concatenate to <see cref="ITextTokenizer.Decode"/> of all ids.
/// <para>
/// Method (HF tokenizers' <c>DecodeStream</c>): decode a short window of ids that starts at the previous piece's
/// tokens, and return what it adds beyond the previous piece, unless it ends in U+FFFD (an incomplete UTF-8
/// sequence). Each call decodes a few tokens, so the cost per token does not grow with the text. A genuine U+FFFD
/// in the text is released with the next token or by <see cref="Flush"/>. Not thread-safe; one per stream.
/// </para>
/// <para>
/// With <c>clean_up_tokenization_spaces</c> on, the windows are decoded without it and the pieces go through the
/// clean-up as one stream: a trailing space (or <c>" n"</c>, <c>" '"</c>, ...) is held back until the next token
/// shows whether punctuation follows it, so a <c>" ."</c> split across tokens comes out as <c>"."</c>, as in the
/// whole decode.
/// </para>
/// </summary>
public sealed class IncrementalDecoder
{
    private const char Replacement = '\uFFFD';
    private readonly ITextTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly TokenizationSpacesStream? _cleanUp;
    private readonly List<int> _window = [];
    private int _prefixLength;          // ids at the start of _window that belong to the last emitted piece
    private string _prefixText = "";    // Decode of those ids

    /// <summary>Creates a decoder over a tokenizer.</summary>
    /// <param name="tokenizer">The tokenizer whose ids arrive.</param>
    /// <param name="skipSpecialTokens">Drop special tokens (default: generation output shows no BOS/EOS).</param>
    /// <param name="cleanUpTokenizationSpaces">
    /// Apply <see cref="TokenizationSpaces.CleanUp"/>, as <see cref="ITextTokenizer.Decode"/> takes it; null: the
    /// tokenizer's <see cref="ITextTokenizer.CleanUpTokenizationSpaces"/>.
    /// </param>
    public IncrementalDecoder(ITextTokenizer tokenizer, bool skipSpecialTokens = true, bool? cleanUpTokenizationSpaces = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
        if (cleanUpTokenizationSpaces ?? tokenizer.CleanUpTokenizationSpaces) _cleanUp = new TokenizationSpacesStream();
    }

    /// <summary>Adds one id; returns the text it completes (often one word piece, sometimes empty).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public string Append(int id)
    {
        if ((uint)id >= (uint)_tokenizer.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id must be in [0, {_tokenizer.VocabSize}); got {id}.");
        _window.Add(id);
        string text = DecodeWindow();
        if (text.Length <= _prefixText.Length || text[^1] == Replacement || !text.StartsWith(_prefixText, StringComparison.Ordinal))
            return "";
        string piece = Emit(text);
        return _cleanUp is null ? piece : _cleanUp.Push(piece);
    }

    /// <summary>Returns what is still held back (an incomplete character decodes to U+FFFD, as a whole decode gives) and starts over.</summary>
    public string Flush()
    {
        string rest = "";
        if (_window.Count > _prefixLength)
        {
            string text = DecodeWindow();
            rest = text.StartsWith(_prefixText, StringComparison.Ordinal) ? text[_prefixText.Length..] : text;
        }
        _window.Clear();
        _prefixLength = 0;
        _prefixText = "";
        return _cleanUp is null ? rest : _cleanUp.Push(rest) + _cleanUp.Flush();
    }

    /// <summary>The window's text before any clean-up, which is applied to the stream of pieces instead.</summary>
    private string DecodeWindow()
        => _tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_window), _skipSpecialTokens, cleanUpTokenizationSpaces: false);

    private string Emit(string text)
    {
        string piece = text[_prefixText.Length..];
        // The ids just emitted become the context of the next piece.
        _window.RemoveRange(0, _prefixLength);
        _prefixLength = _window.Count;
        _prefixText = DecodeWindow();
        return piece;
    }
}
