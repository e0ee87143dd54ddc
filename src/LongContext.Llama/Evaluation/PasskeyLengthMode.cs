namespace LongContext.Llama.Evaluation;

/// <summary>How a target length in tokens becomes a prompt's filler size.</summary>
public enum PasskeyLengthMode
{
    /// <summary>
    /// LongLoRA's script: <c>int(3.75 * L // 1024 * 1024)</c> filler characters whatever the tokenizer (about L
    /// tokens with Llama's); the result reports the prompts' real mean token count, as the script prints it.
    /// </summary>
    LongLoraCharacterRatio,

    /// <summary>
    /// The largest filler (in characters) whose prompt, BOS included, has at most L tokens under the given
    /// tokenizer, found per trial by bisection (token counts grow with the filler, up to tokenizer merges at the cut).
    /// </summary>
    TokenBudget,
}
