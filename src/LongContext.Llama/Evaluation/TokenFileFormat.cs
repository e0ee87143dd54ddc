namespace LongContext.Llama.Evaluation;

/// <summary>Element type of a raw token file (no header, little-endian ids back to back).</summary>
public enum TokenFileFormat
{
    /// <summary>2-byte ids: LongLoRA's PG19 and proof-pile evaluation files (<c>np.memmap(path, dtype=np.uint16)</c>).</summary>
    UInt16,

    /// <summary>4-byte ids, for vocabularies above 65,536 tokens.</summary>
    UInt32,
}
