using System.Globalization;

namespace LongContext.Llama.Evaluation;

/// <summary>One passkey prompt and its answer.</summary>
/// <param name="Prompt">The whole prompt text (task, filler before, key line, filler after, question; joined by newlines).</param>
/// <param name="Answer">The key as text (what the model must generate).</param>
/// <param name="Key">The key, in [1, 50000).</param>
/// <param name="PrefixCharacters">Filler characters before the key line (the depth).</param>
/// <param name="GarbageCharacters">Filler characters in all (before + after).</param>
public sealed record PasskeyCase(string Prompt, string Answer, long Key, int PrefixCharacters, int GarbageCharacters);

/// <summary>
/// The prompts of LongLoRA's <c>passkey_retrivial.py</c> (<c>generate_prompt_landmark</c>), character for character
/// and draw for draw: after numpy's <c>random.seed(seed)</c> the filler before the key takes
/// <c>randint(0, n_garbage)</c> characters of the filler sentence repeated 5000 times (joined by spaces), the filler
/// after it the rest of <c>n_garbage</c> (again from the start of the repeated text), and the key is
/// <c>randint(1, 50000)</c> (numpy excludes the upper bound: keys 1..49999).
/// </summary>
public static class PasskeyPrompt
{
    /// <summary>The task sentence that opens every prompt.</summary>
    public const string TaskDescription = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.";

    /// <summary>The filler sentence, repeated to reach the length.</summary>
    public const string Filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

    /// <summary>The question that closes every prompt; the model continues it with the key.</summary>
    public const string Question = "What is the pass key? The pass key is";

    /// <summary>Times the filler is repeated (the script's <c>" ".join([garbage] * 5000)</c>).</summary>
    public const int FillerRepeats = 5000;

    private static readonly Lazy<string> RepeatedFiller = new(() => string.Join(" ", Enumerable.Repeat(Filler, FillerRepeats)));

    /// <summary>The most filler characters a prompt can have (the repeated text's length).</summary>
    public static int MaxGarbageCharacters => RepeatedFiller.Value.Length;

    /// <summary>The key line: "The pass key is {k}. Remember it. {k} is the pass key."</summary>
    /// <param name="key">The key.</param>
    public static string KeyLine(long key) => string.Create(CultureInfo.InvariantCulture, $"The pass key is {key}. Remember it. {key} is the pass key.");

    /// <summary>
    /// LongLoRA's filler size for a target length in tokens: <c>int(3.75 * L // 1024 * 1024)</c> characters (the
    /// script's "rough ratio" of characters per token, in whole KiB).
    /// </summary>
    /// <param name="targetTokens">Target prompt length in tokens, positive.</param>
    public static int LongLoraGarbageCharacters(int targetTokens)
    {
        if (targetTokens < 1) throw new ArgumentOutOfRangeException(nameof(targetTokens), targetTokens, $"{nameof(targetTokens)} must be positive; got {targetTokens}.");
        return (int)(Math.Floor(3.75 * targetTokens / 1024) * 1024);
    }

    /// <summary>The prompt of one trial.</summary>
    /// <param name="garbageCharacters">Filler characters (the script's <c>n_garbage</c>), in [1, <see cref="MaxGarbageCharacters"/>].</param>
    /// <param name="seed">numpy seed of the trial (the script uses the trial index 0..9), in [0, 2^32).</param>
    /// <exception cref="ArgumentOutOfRangeException">A filler size out of range or a negative seed.</exception>
    public static PasskeyCase Generate(int garbageCharacters, long seed)
    {
        if (garbageCharacters < 1 || garbageCharacters > MaxGarbageCharacters)
            throw new ArgumentOutOfRangeException(nameof(garbageCharacters), garbageCharacters,
                $"{nameof(garbageCharacters)} must be in [1, {MaxGarbageCharacters}] (the filler repeated {FillerRepeats} times); got {garbageCharacters}.");
        if (seed < 0 || seed > uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(seed), seed, $"{nameof(seed)} must be in [0, 2^32) as numpy requires; got {seed}.");
        var random = new NumpyLegacyRandom((uint)seed);
        int prefix = (int)random.RandInt(0, garbageCharacters);
        int suffix = garbageCharacters - prefix;
        long key = random.RandInt(1, 50000);
        string filler = RepeatedFiller.Value;
        string prompt = string.Join("\n", TaskDescription, filler[..prefix], KeyLine(key), filler[..suffix], Question);
        return new PasskeyCase(prompt, key.ToString(CultureInfo.InvariantCulture), key, prefix, garbageCharacters);
    }
}
