namespace LongContext.Llama.Generation;

/// <summary>Why a row stopped.</summary>
public enum FinishReason
{
    /// <summary><see cref="DecodingOptions.MaxNewTokens"/> tokens were generated.</summary>
    MaxNewTokens,

    /// <summary>A token of <see cref="DecodingOptions.StopTokenIds"/> was generated (it is the row's last token).</summary>
    StopToken,

    /// <summary>The text reached one of <see cref="DecodingOptions.StopStrings"/> (cut right before it).</summary>
    StopString,
}

/// <summary>One generated token of a streamed generation.</summary>
/// <param name="Row">Prompt index in the batch (0 for a single prompt).</param>
/// <param name="Index">0 for the row's first generated token, then 1, 2, ...</param>
/// <param name="TokenId">The token id.</param>
/// <param name="Text">The text this token completes (characters whole; empty while a character or a possible stop
/// string is incomplete); a row's pieces concatenate to its <see cref="GenerationResult.Text"/>.</param>
/// <param name="Finish">Set on the row's last token: why it stopped.</param>
public sealed record GeneratedToken(int Row, int Index, int TokenId, string Text, FinishReason? Finish);

/// <summary>What one prompt generated.</summary>
/// <param name="TokenIds">The generated ids (a stop token included, the prompt excluded).</param>
/// <param name="Text">Their text (cut before a stop string); empty without a tokenizer. Ids the tokenizer has no token
/// for (a model vocabulary padded past the tokenizer's) add no text, as HF's decode skips them.</param>
/// <param name="Finish">Why the row stopped.</param>
public sealed record GenerationResult(IReadOnlyList<int> TokenIds, string Text, FinishReason Finish);
