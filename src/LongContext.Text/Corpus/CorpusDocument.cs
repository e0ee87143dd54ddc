namespace LongContext.Text.Corpus;

/// <summary>One document of a corpus: its text and where it came from.</summary>
/// <param name="Text">The document's text.</param>
/// <param name="Origin">File (and line for JSONL) it came from, for messages.</param>
/// <param name="SourceBytes">Bytes of the source it occupied (for progress against <see cref="CorpusSource.TotalBytes"/>).</param>
public sealed record CorpusDocument(string Text, string Origin, long SourceBytes);
