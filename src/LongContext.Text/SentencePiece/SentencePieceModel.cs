namespace LongContext.Text.SentencePiece;

/// <summary>SentencePiece's piece types (<c>ModelProto.SentencePiece.Type</c>).</summary>
internal enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>One vocabulary entry of a <c>tokenizer.model</c>: its text, score (higher merges first) and type.</summary>
internal readonly record struct Piece(string Text, float Score, PieceType Type);

/// <summary>
/// The fields of a SentencePiece <c>ModelProto</c> that decide how text is tokenized; the rest of the file
/// (training corpus settings, self-test data) is read past. Defaults are the proto's.
/// </summary>
internal sealed record SentencePieceModel
{
    /// <summary>Pieces in id order.</summary>
    public required IReadOnlyList<Piece> Pieces { get; init; }

    /// <summary><c>trainer_spec.model_type</c>: 1 UNIGRAM (the default), 2 BPE, 3 WORD, 4 CHAR.</summary>
    public int ModelType { get; init; } = 1;

    /// <summary><c>trainer_spec.byte_fallback</c>: unseen characters become <c>&lt;0xXX&gt;</c> byte pieces.</summary>
    public bool ByteFallback { get; init; }

    /// <summary><c>trainer_spec.treat_whitespace_as_suffix</c>.</summary>
    public bool TreatWhitespaceAsSuffix { get; init; }

    /// <summary><c>trainer_spec.unk_id</c>, <c>bos_id</c>, <c>eos_id</c>, <c>pad_id</c> (-1: none).</summary>
    public int UnkId { get; init; }

    /// <inheritdoc cref="UnkId"/>
    public int BosId { get; init; } = 1;

    /// <inheritdoc cref="UnkId"/>
    public int EosId { get; init; } = 2;

    /// <inheritdoc cref="UnkId"/>
    public int PadId { get; init; } = -1;

    /// <summary><c>normalizer_spec.name</c> (<c>identity</c> for Llama-2 and Mistral; empty when absent).</summary>
    public string NormalizerName { get; init; } = "";

    /// <summary>Length of <c>normalizer_spec.precompiled_charsmap</c> (0 for the identity rule).</summary>
    public int PrecompiledCharsmapLength { get; init; }

    /// <summary><c>normalizer_spec.add_dummy_prefix</c>: a space is put before the text.</summary>
    public bool AddDummyPrefix { get; init; } = true;

    /// <summary><c>normalizer_spec.remove_extra_whitespaces</c>: runs of spaces collapse and ends are trimmed.</summary>
    public bool RemoveExtraWhitespaces { get; init; } = true;

    /// <summary>
    /// Length of <c>denormalizer_spec.precompiled_charsmap</c> (0: none, as in every Llama-family model); when set,
    /// sentencepiece rewrites decoded text with it.
    /// </summary>
    public int DenormalizerCharsmapLength { get; init; }

    /// <summary><c>trainer_spec.unk_surface</c>: the text an unknown piece decodes to (the proto's default <c>" ⁇ "</c>).</summary>
    public string UnknownSurface { get; init; } = " \u2047 ";

    /// <summary><c>normalizer_spec.escape_whitespaces</c>: spaces become U+2581 (▁).</summary>
    public bool EscapeWhitespaces { get; init; } = true;
}
