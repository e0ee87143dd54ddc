namespace LongContext.Text.Corpus;

/// <summary>How documents become rows of <see cref="PackingOptions.RowLength"/> tokens.</summary>
public enum PackingMode
{
    /// <summary>
    /// LongLoRA's pretraining data (<c>fine-tune.py</c>'s <c>tokenize_fn</c>): each group of
    /// <see cref="PackingOptions.DocumentsPerGroup"/> documents is joined with EOS between them (not after the last)
    /// behind one BOS, padded to a multiple of L and cut into rows of L; padding has label -100.
    /// </summary>
    Concatenate,

    /// <summary>LongQLoRA's pretraining collator: each document is BOS + its tokens, truncated to L or padded to L.</summary>
    TruncateOrPad,
}

/// <summary>Options of <see cref="CorpusPacker"/>, validated as they are set.</summary>
public sealed record PackingOptions
{
    /// <summary>Default <see cref="DocumentsPerGroup"/>: 1000, the batch size LongLoRA's <c>datasets.map(batched=True)</c> groups by.</summary>
    public const int DefaultDocumentsPerGroup = 1000;

    private readonly int _rowLength = 8192;
    private readonly PackingMode _mode;
    private readonly int? _documentsPerGroup = DefaultDocumentsPerGroup;
    private readonly int? _padId;

    /// <summary>Tokens per row, L; at least 2. Default 8192 (LongLoRA's 7B fine-tuning length).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Below 2.</exception>
    public int RowLength
    {
        get => _rowLength;
        init => _rowLength = value >= 2 ? value : throw new ArgumentOutOfRangeException(nameof(RowLength), value, $"{nameof(RowLength)} must be at least 2; got {value}.");
    }

    /// <summary>Packing scheme. Default <see cref="PackingMode.Concatenate"/> (LongLoRA).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined <see cref="PackingMode"/>.</exception>
    public PackingMode Mode
    {
        get => _mode;
        init => _mode = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Mode), value, $"{nameof(Mode)} must be Concatenate or TruncateOrPad; got {value}.");
    }

    /// <summary>
    /// <see cref="PackingMode.Concatenate"/>: documents joined per group, each group starting with BOS and its tail
    /// padded. Default 1000, the batch size of the <c>datasets.map(batched=True)</c> call LongLoRA tokenizes with;
    /// null joins the whole corpus (one BOS, one padded tail). Positive. Read only in Concatenate mode: another value
    /// (null included) with <see cref="PackingMode.TruncateOrPad"/> is refused by <see cref="CorpusPacker.Pack"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative.</exception>
    public int? DocumentsPerGroup
    {
        get => _documentsPerGroup;
        init => _documentsPerGroup = value is null or > 0 ? value : throw new ArgumentOutOfRangeException(nameof(DocumentsPerGroup), value, $"{nameof(DocumentsPerGroup)} must be positive or null; got {value}.");
    }

    /// <summary>Put BOS in front (of each group, or each document for <see cref="PackingMode.TruncateOrPad"/>), as the HF tokenizer call does. Default true.</summary>
    public bool AddBos { get; init; } = true;

    /// <summary>
    /// Id written at padding positions (their labels are -100 and attention mask 0, so the value does not change
    /// the loss). Null (default): the tokenizer's pad id, else its EOS (LongQLoRA's choice), else 0. Non-negative.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public int? PadId
    {
        get => _padId;
        init => _padId = value is null or >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(PadId), value, $"{nameof(PadId)} must be non-negative or null; got {value}.");
    }

    /// <summary>Refuses a <see cref="DocumentsPerGroup"/> other than the default in <see cref="PackingMode.TruncateOrPad"/>, which has no groups.</summary>
    /// <param name="paramName">The parameter the options came in as, for the exception.</param>
    internal void CheckSettingsUsed(string paramName)
    {
        if (_mode == PackingMode.TruncateOrPad && _documentsPerGroup != DefaultDocumentsPerGroup)
            throw new ArgumentException(
                $"{nameof(DocumentsPerGroup)} {(_documentsPerGroup is int n ? n.ToString(System.Globalization.CultureInfo.InvariantCulture) : "null (the whole corpus)")} groups documents in Concatenate mode, " +
                $"and {nameof(Mode)} is {nameof(PackingMode.TruncateOrPad)} (one row per document); leave {nameof(DocumentsPerGroup)} at its default ({DefaultDocumentsPerGroup}) or choose Concatenate.",
                paramName);
    }
}
