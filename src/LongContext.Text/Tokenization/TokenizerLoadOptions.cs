namespace LongContext.Text.Tokenization;

/// <summary>Which tokenizer file of a checkpoint folder to read.</summary>
public enum TokenizerFile
{
    /// <summary><c>tokenizer.json</c> when the folder has one (as transformers' <c>AutoTokenizer</c> prefers), else <c>tokenizer.model</c>.</summary>
    Auto,

    /// <summary>HF tokenizers' <c>tokenizer.json</c>.</summary>
    TokenizerJson,

    /// <summary>SentencePiece's <c>tokenizer.model</c>, with sentencepiece's semantics.</summary>
    SentencePieceModel,
}

/// <summary>Options of <see cref="HfTokenizer.Load"/>, validated as they are set.</summary>
public sealed record TokenizerLoadOptions
{
    private readonly TokenizerFile _file;

    /// <summary>Which file to read. Default <see cref="TokenizerFile.Auto"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="TokenizerFile"/>.</exception>
    public TokenizerFile File
    {
        get => _file;
        init => _file = Enum.IsDefined(value)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(File), value, $"{nameof(File)} must be Auto, TokenizerJson or SentencePieceModel; got {value}.");
    }

    /// <summary>
    /// Sets <see cref="HfTokenizer.CleanUpTokenizationSpaces"/> outright. Default null: from the folder, as
    /// transformers 5.7 and later read it (for these BPE tokenizers, on only when <c>tokenizer_config.json</c> sets
    /// <c>clean_up_tokenization_spaces</c> and <c>clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output</c>).
    /// To decode as transformers 4.x did, set it to the folder's <c>clean_up_tokenization_spaces</c>.
    /// </summary>
    public bool? CleanUpTokenizationSpaces { get; init; }
}
