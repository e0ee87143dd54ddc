using LongContext.Text.Tokenization;

namespace LongContext.Llama.Evaluation;

/// <summary>
/// Passkey retrieval as LongLoRA's <c>passkey_retrivial.py</c>: per target length, <see cref="PasskeyOptions.Trials"/>
/// prompts (<see cref="PasskeyPrompt"/>, seeds 0..9 by default), greedy decoding of as many tokens as the answer has
/// (the key's encoding without its BOS), exact match.
/// </summary>
public static class PasskeyRetrieval
{
    /// <summary>The prompt of one trial at one target length, under the options' length mode.</summary>
    /// <param name="tokenizer">The tokenizer (for <see cref="PasskeyLengthMode.TokenBudget"/>).</param>
    /// <param name="targetTokens">Target length in tokens.</param>
    /// <param name="seed">numpy seed.</param>
    /// <param name="mode">Length mode.</param>
    /// <exception cref="ArgumentException">The target is too short for the fixed sentences, or too long for the filler text.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="mode"/> is not a defined <see cref="PasskeyLengthMode"/>.</exception>
    public static PasskeyCase Prompt(ITextTokenizer tokenizer, int targetTokens, long seed, PasskeyLengthMode mode)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        CheckTarget(targetTokens, mode, TokenBudgetBounds(tokenizer, seed));
        if (mode == PasskeyLengthMode.LongLoraCharacterRatio)
            return PasskeyPrompt.Generate(PasskeyPrompt.LongLoraGarbageCharacters(targetTokens), seed);
        int lo = 1, hi = PasskeyPrompt.MaxGarbageCharacters;            // invariant: Tokens(lo) <= target < Tokens(hi)
        while (hi - lo > 1)
        {
            int mid = lo + (hi - lo) / 2;
            if (Tokens(mid) <= targetTokens) lo = mid; else hi = mid;
        }
        return PasskeyPrompt.Generate(lo, seed);

        int Tokens(int chars) => tokenizer.Encode(PasskeyPrompt.Generate(chars, seed).Prompt).Length;
    }

    /// <summary>
    /// The one check of a target length: what <see cref="Prompt"/> refuses, refused naming the target.
    /// <paramref name="tokenBudget"/> (the accepted range [shortest, longest) of a trial's prompt) is only evaluated
    /// under <see cref="PasskeyLengthMode.TokenBudget"/>: it costs an encoding of the whole filler.
    /// </summary>
    private static void CheckTarget(int targetTokens, PasskeyLengthMode mode, Lazy<(int Shortest, int Longest)> tokenBudget)
    {
        if (!Enum.IsDefined(mode))
            throw new ArgumentOutOfRangeException(nameof(mode), mode, $"{nameof(mode)} must be LongLoraCharacterRatio or TokenBudget; got {(int)mode}.");
        if (mode == PasskeyLengthMode.LongLoraCharacterRatio)
        {
            int chars = PasskeyPrompt.LongLoraGarbageCharacters(targetTokens);
            if (chars < 1)
                throw new ArgumentException($"target length {targetTokens} gives {chars} filler characters under LongLoRA's ratio (3.75 per token in whole KiB); use at least 274 tokens.", nameof(targetTokens));
            if (chars > PasskeyPrompt.MaxGarbageCharacters)
                throw new ArgumentException($"target length {targetTokens} needs {chars} filler characters; the repeated filler has {PasskeyPrompt.MaxGarbageCharacters}.", nameof(targetTokens));
            return;
        }
        var (shortest, longest) = tokenBudget.Value;
        if (shortest > targetTokens)
            throw new ArgumentException($"target length {targetTokens} is shorter than the prompt's fixed sentences with one filler character ({shortest} tokens).", nameof(targetTokens));
        if (longest <= targetTokens)
            throw new ArgumentException($"target length {targetTokens} exceeds the longest prompt the filler allows ({longest} tokens).", nameof(targetTokens));
    }

    private static Lazy<(int Shortest, int Longest)> TokenBudgetBounds(ITextTokenizer tokenizer, long seed)
        => new(() => (ShortestTokenBudget(tokenizer, seed), LongestTokenBudget(tokenizer, seed)));

    /// <summary>
    /// The shortest target length <see cref="Prompt"/> accepts under <see cref="PasskeyLengthMode.TokenBudget"/> for
    /// one trial: the tokens of the prompt's fixed sentences with one filler character.
    /// </summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="seed">numpy seed of the trial.</param>
    public static int ShortestTokenBudget(ITextTokenizer tokenizer, long seed)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(PasskeyPrompt.Generate(1, seed).Prompt).Length;
    }

    /// <summary>
    /// The first target length <see cref="Prompt"/> refuses under <see cref="PasskeyLengthMode.TokenBudget"/> for one
    /// trial: the tokens of the prompt with all <see cref="PasskeyPrompt.MaxGarbageCharacters"/> filler characters (one
    /// encoding of about 450,000 characters). Accepted targets are [<see cref="ShortestTokenBudget"/>, this).
    /// </summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="seed">numpy seed of the trial.</param>
    public static int LongestTokenBudget(ITextTokenizer tokenizer, long seed)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(PasskeyPrompt.Generate(PasskeyPrompt.MaxGarbageCharacters, seed).Prompt).Length;
    }

    /// <summary>Runs every trial at every length.</summary>
    /// <param name="decoder">Greedy decoder over the model (e.g. <see cref="FullForwardGreedyDecoder"/>).</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="options">Lengths, trials, length mode, seeds.</param>
    /// <param name="checkPromptLength">Called with each prompt's token count before decoding (e.g. to reject lengths the model cannot take); may throw.</param>
    /// <param name="progress">Reports one line per trial, or null.</param>
    /// <returns>One result per length, in the options' order.</returns>
    /// <exception cref="ArgumentException">A length <see cref="Prompt"/> refuses, or trials whose last seed passes 2^32 - 1 (checked before any trial runs).</exception>
    public static IReadOnlyList<PasskeyResult> Run(IGreedyDecoder decoder, ITextTokenizer tokenizer, PasskeyOptions options,
        Action<int>? checkPromptLength = null, IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        CheckOptions(tokenizer, options);
        return RunChecked(decoder, tokenizer, options, checkPromptLength, progress);
    }

    /// <summary><see cref="Run"/> after <see cref="CheckOptions"/> (which <see cref="LlamaEvaluation"/> calls before its perplexity run).</summary>
    internal static IReadOnlyList<PasskeyResult> RunChecked(IGreedyDecoder decoder, ITextTokenizer tokenizer, PasskeyOptions options,
        Action<int>? checkPromptLength, IProgress<string>? progress)
    {
        var results = new List<PasskeyResult>();
        foreach (int length in options.Lengths)
        {
            var trials = new List<PasskeyTrial>();
            for (int t = 0; t < options.Trials; t++)
            {
                long seed = options.FirstSeed + t;
                PasskeyCase c = Prompt(tokenizer, length, seed, options.LengthMode);
                long[] prompt = tokenizer.Encode(c.Prompt).Select(t => (long)t).ToArray();
                checkPromptLength?.Invoke(prompt.Length);
                long[] answer = AnswerTokens(tokenizer, c.Answer);
                long[] generated = decoder.Generate(prompt, answer.Length);
                var trial = new PasskeyTrial(seed, c.Key, prompt.Length, c.PrefixCharacters, c.GarbageCharacters, answer, generated);
                trials.Add(trial);
                progress?.Report($"passkey L={length} trial {t + 1}/{options.Trials}: {prompt.Length} tokens, {(trial.Correct ? "correct" : "wrong")}");
            }
            results.Add(new PasskeyResult(length, trials));
        }
        return results;
    }

    /// <summary>
    /// Checks that the last trial's seed is one numpy takes and that <see cref="Prompt"/> takes every length (for the
    /// first trial's seed, the token budget's bounds encoded once for all lengths), so options it refuses fail before
    /// any model work (a later length's error would otherwise come after the earlier lengths, or a whole perplexity run).
    /// </summary>
    internal static void CheckOptions(ITextTokenizer tokenizer, PasskeyOptions options)
    {
        long lastSeed = options.FirstSeed + options.Trials - 1;
        if (lastSeed > uint.MaxValue)
            throw new ArgumentException(
                $"{nameof(PasskeyOptions.FirstSeed)} {options.FirstSeed} with {options.Trials} {nameof(PasskeyOptions.Trials)} makes the last seed {lastSeed}, " +
                $"past numpy's 2^32 - 1; lower one of them.", nameof(options));
        var tokenBudget = TokenBudgetBounds(tokenizer, options.FirstSeed);
        foreach (int length in options.Lengths) CheckTarget(length, options.LengthMode, tokenBudget);
    }

    /// <summary>
    /// The answer's ids: its encoding (special tokens added, as HF's <c>tokenizer(answer)</c>) with the leading BOS
    /// dropped (the script's <c>input_ids[:, 1:]</c>; a tokenizer that adds no BOS keeps every id).
    /// </summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="answer">The key as text.</param>
    public static long[] AnswerTokens(ITextTokenizer tokenizer, string answer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        int[] ids = tokenizer.Encode(answer);
        long[] result = (ids.Length > 0 && tokenizer.SpecialTokens.Bos is int bos && ids[0] == bos ? ids.Skip(1) : ids).Select(t => (long)t).ToArray();
        if (result.Length == 0) throw new InvalidOperationException($"the tokenizer encodes the answer '{answer}' to no tokens besides BOS.");
        return result;
    }
}
