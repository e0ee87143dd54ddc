using System.Text.Json;
using LongContext.Llama.Evaluation;
using LongContext.Tests.Support;
using LongContext.Text.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Evaluation;

/// <summary>
/// Passkey prompts against numpy's draws for LongLoRA's script (fixture <c>passkey/longlora_passkey.json</c>, made by
/// <c>generators/passkey_reference.py</c>: depth and key for every (n_garbage, seed), whole prompts for n_garbage 200),
/// token lengths in the token-budget mode, answer handling and exact-match scoring, and greedy decoding on a model.
/// </summary>
[Trait(Category.Name, Category.Model)]
[Trait(Category.Name, Category.Reference)]
[Collection(GlobalRngCollection.Name)]
public sealed class PasskeyTests
{
    private sealed record Case(int n_garbage, long seed, int prefix, long key, string? prompt);

    private static IEnumerable<Case> FixtureCases()
    {
        foreach (string file in Fixtures.Files("passkey", "*.json"))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Folder("passkey"), file)));
            foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
                yield return c.Deserialize<Case>()!;
        }
    }

    [Fact]
    public void Prompts_EqualNumpysDrawsForLongLorasScript()
    {
        int checkedCases = 0, checkedPrompts = 0;
        foreach (Case c in FixtureCases())
        {
            PasskeyCase ours = PasskeyPrompt.Generate(c.n_garbage, c.seed);
            Assert.True(c.prefix == ours.PrefixCharacters && c.key == ours.Key,
                $"n_garbage {c.n_garbage}, seed {c.seed}: depth {ours.PrefixCharacters} key {ours.Key}, numpy {c.prefix} {c.key}");
            Assert.InRange(ours.Key, 1, 49999);
            if (c.prompt is not null)
            {
                Assert.Equal(c.prompt, ours.Prompt);
                checkedPrompts++;
            }
            checkedCases++;
        }
        // The fixture set must hold cases (the only reference for the prompts), whole prompts among them.
        Assert.True(checkedCases > 0, $"no passkey cases under '{Fixtures.Folder("passkey")}' (the fixture set must hold passkey/*.json)");
        Assert.True(checkedPrompts > 0, "the passkey fixture should hold whole prompts too");
    }

    [Fact]
    public void LongLoraCharacterRatio_MatchesTheScriptsFormulaAndTheFixtureSizes()
    {
        Assert.Equal(3072, PasskeyPrompt.LongLoraGarbageCharacters(1000));     // 3.75 * 1000 / 1024 = 3.66 -> 3 KiB
        Assert.Equal(7168, PasskeyPrompt.LongLoraGarbageCharacters(2000));     // 7.32 -> 7 KiB
        Assert.Equal(15360, PasskeyPrompt.LongLoraGarbageCharacters(4096));    // 15 -> 15 KiB
        Assert.Equal(0, PasskeyPrompt.LongLoraGarbageCharacters(273));
        var fixtureSizes = FixtureCases().Select(c => c.n_garbage).Where(n => n >= 3072).Distinct().Order().ToArray();
        if (fixtureSizes.Length > 0)
            Assert.Equal(Enumerable.Range(1, 32).Select(i => PasskeyPrompt.LongLoraGarbageCharacters(1000 * i)).Distinct().Order(), fixtureSizes);
    }

    [Fact]
    public void Prompt_HasTheScriptsLines()
    {
        PasskeyCase c = PasskeyPrompt.Generate(500, 3);
        string[] lines = c.Prompt.Split('\n');
        Assert.Equal(5, lines.Length);
        Assert.Equal(PasskeyPrompt.TaskDescription, lines[0]);
        Assert.Equal($"The pass key is {c.Key}. Remember it. {c.Key} is the pass key.", lines[2]);
        Assert.Equal("What is the pass key? The pass key is", lines[4]);
        Assert.Equal(500, lines[1].Length + lines[3].Length);
        Assert.StartsWith("The grass is green. The sky is blue.", string.Join("", lines[1], lines[3]));
    }

    [Theory]
    [InlineData(300)]
    [InlineData(1000)]
    [InlineData(2500)]
    public void TokenBudget_PromptsHaveAtMostTheTargetLength_AndOneMoreFillerCharacterExceedsIt(int target)
    {
        var tokenizer = new WordTokenizer();
        for (long seed = 0; seed < 10; seed++)
        {
            PasskeyCase c = PasskeyRetrieval.Prompt(tokenizer, target, seed, PasskeyLengthMode.TokenBudget);
            int tokens = tokenizer.Encode(c.Prompt).Length;
            int longer = tokenizer.Encode(PasskeyPrompt.Generate(c.GarbageCharacters + 1, seed).Prompt).Length;
            Assert.True(tokens <= target && longer > target, $"seed {seed}: {tokens} tokens, one more character {longer}, target {target}");
            Assert.True(tokens >= target - 3, $"seed {seed}: {tokens} tokens is far below the target {target}");
        }
    }

    /// <summary>The same with the SentencePiece tokenizer fixtures (Llama-2's pipeline, HF tokenizers' code); at least one of the two must be in the set.</summary>
    [Fact]
    public void TokenBudget_WithSentencePieceTokenizers_FitsTheTarget()
    {
        string root = Fixtures.Folder("tokenizers");
        string[] present = new[] { "spm_bpe", "hf_metaspace_bpe" }.Where(n => Directory.Exists(Path.Combine(root, n))).ToArray();
        Assert.True(present.Length > 0, $"neither spm_bpe nor hf_metaspace_bpe is under '{root}': nothing would be checked");
        foreach (string name in present)
        {
            using var tokenizer = HfTokenizer.Load(Path.Combine(root, name));
            foreach (long seed in new long[] { 0, 5 })
            {
                PasskeyCase c = PasskeyRetrieval.Prompt(tokenizer, 1500, seed, PasskeyLengthMode.TokenBudget);
                int tokens = tokenizer.Encode(c.Prompt).Length;
                int longer = tokenizer.Encode(PasskeyPrompt.Generate(c.GarbageCharacters + 1, seed).Prompt).Length;
                Assert.True(tokens <= 1500 && longer > 1500, $"{name} seed {seed}: {tokens} tokens, one more character {longer}");
                Assert.Equal(tokenizer.SpecialTokens.Bos, tokenizer.Encode(c.Prompt)[0]);
                long[] answer = PasskeyRetrieval.AnswerTokens(tokenizer, c.Answer);
                Assert.Equal(tokenizer.Encode(c.Answer).Skip(1).Select(t => (long)t), answer);   // the script's [:, 1:]
            }
        }
    }

    /// <summary>
    /// The limits are Prompt's own boundaries: it refuses one below the shortest and at the longest, and accepts both
    /// ends of [shortest, longest) with prompts of one filler character and of all but the last few.
    /// </summary>
    [Fact]
    public void TokenBudgetLimits_AreWherePromptStartsAndStopsAccepting()
    {
        var tokenizer = new WordTokenizer();
        for (long seed = 0; seed < 3; seed++)
        {
            int shortest = PasskeyRetrieval.ShortestTokenBudget(tokenizer, seed), longest = PasskeyRetrieval.LongestTokenBudget(tokenizer, seed);
            Assert.True(shortest > 20 && longest > 10 * shortest, $"seed {seed}: limits {shortest}, {longest}");
            Assert.Throws<ArgumentException>(() => PasskeyRetrieval.Prompt(tokenizer, shortest - 1, seed, PasskeyLengthMode.TokenBudget));
            Assert.Throws<ArgumentException>(() => PasskeyRetrieval.Prompt(tokenizer, longest, seed, PasskeyLengthMode.TokenBudget));
            PasskeyCase first = PasskeyRetrieval.Prompt(tokenizer, shortest, seed, PasskeyLengthMode.TokenBudget);
            Assert.Equal(shortest, tokenizer.Encode(first.Prompt).Length);
            PasskeyCase last = PasskeyRetrieval.Prompt(tokenizer, longest - 1, seed, PasskeyLengthMode.TokenBudget);
            Assert.InRange(tokenizer.Encode(last.Prompt).Length, longest - 4, longest - 1);
            Assert.True(last.GarbageCharacters < PasskeyPrompt.MaxGarbageCharacters, $"seed {seed}: {last.GarbageCharacters} filler characters");
        }
    }

    [Fact]
    public void TokenBudget_TargetShorterThanTheFixedSentences_IsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => PasskeyRetrieval.Prompt(new WordTokenizer(), 20, 0, PasskeyLengthMode.TokenBudget));
        Assert.Contains("target length 20", e.Message);
    }

    [Fact]
    public void Prompt_UndefinedLengthMode_IsAnErrorNamingIt()
    {
        // Before: any value other than LongLoraCharacterRatio was taken as TokenBudget.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PasskeyRetrieval.Prompt(new CharTokenizer(), 1000, 0, (PasskeyLengthMode)7));
        Assert.Equal("mode", e.ParamName);
        Assert.Contains("got 7", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LongLoraRatio_TargetTooShort_IsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => PasskeyRetrieval.Prompt(new WordTokenizer(), 100, 0, PasskeyLengthMode.LongLoraCharacterRatio));
        Assert.Contains("274", e.Message);
    }

    [Fact]
    public void Answer_DropsTheBosOnly()
    {
        Assert.Equal([(long)'4', '2', '1'], PasskeyRetrieval.AnswerTokens(new CharTokenizer(), "421"));
    }

    /// <summary>Decoders that read the key from the prompt (always right) or answer one token off (always wrong).</summary>
    private sealed class ScriptedDecoder(bool right) : IGreedyDecoder
    {
        public List<int> Counts { get; } = [];

        public long[] Generate(IReadOnlyList<long> prompt, int count)
        {
            Counts.Add(count);
            string text = new(prompt.Skip(1).Select(t => (char)t).ToArray());
            string key = text.Split("The pass key is ")[1].Split('.')[0];
            long[] answer = key.Select(ch => (long)ch).ToArray();
            if (!right) answer[^1] += 1;
            return answer;
        }
    }

    [Theory]
    [InlineData(true, 1.0)]
    [InlineData(false, 0.0)]
    public void Run_ScoresExactMatches_GeneratingAsManyTokensAsTheAnswer(bool right, double accuracy)
    {
        var decoder = new ScriptedDecoder(right);
        var options = new PasskeyOptions { Lengths = [300, 600], Trials = 4, LengthMode = PasskeyLengthMode.TokenBudget };
        var results = PasskeyRetrieval.Run(decoder, new CharTokenizer(), options);
        Assert.Equal(2, results.Count);
        Assert.All(results, r => Assert.Equal(accuracy, r.Accuracy));
        var keys = results.SelectMany(r => r.Trials).Select(t => t.Key.ToString(System.Globalization.CultureInfo.InvariantCulture).Length);
        Assert.Equal(keys, decoder.Counts);
        Assert.Equal([0L, 1, 2, 3], results[0].Trials.Select(t => t.Seed));
        Assert.All(results, r => Assert.All(r.Trials, t => Assert.InRange(t.PromptTokens, r.TargetLength - 3, r.TargetLength)));
    }

    [Fact]
    public void Run_ALengthThePromptRefuses_FailsBeforeAnyTrial()
    {
        // Before: the 4 trials at 300 ran, then length 100 failed and their results were lost.
        var decoder = new ScriptedDecoder(right: true);
        var options = new PasskeyOptions { Lengths = [300, 100], Trials = 4, LengthMode = PasskeyLengthMode.LongLoraCharacterRatio };
        var e = Assert.Throws<ArgumentException>(() => PasskeyRetrieval.Run(decoder, new CharTokenizer(), options));
        Assert.Contains("target length 100", e.Message, StringComparison.Ordinal);
        Assert.Empty(decoder.Counts);
    }

    [Fact]
    public void Run_TrialsWhoseLastSeedPassesNumpysRange_FailBeforeAnyTrial()
    {
        // Before: 100,001 trials ran, then seed 2^32 failed in PasskeyPrompt.Generate.
        var decoder = new ScriptedDecoder(right: true);
        var options = new PasskeyOptions { Lengths = [300], Trials = 100_002, FirstSeed = uint.MaxValue - 100_000L };
        var e = Assert.Throws<ArgumentException>(() => PasskeyRetrieval.Run(decoder, new CharTokenizer(), options));
        Assert.Contains("the last seed 4294967296", e.Message, StringComparison.Ordinal);
        Assert.Empty(decoder.Counts);
    }

    [Theory]
    [InlineData(EvaluationModels.Vocab)]
    [InlineData(-1)]
    public void FullForwardGreedyDecoder_PromptIdOutsideTheVocabulary_NamesIndexAndValue(long id)
    {
        // A tokenizer larger than the model's vocabulary (not the model's) gave libtorch's "index out of range in self".
        using var model = EvaluationModels.Random();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new FullForwardGreedyDecoder(model).Generate([1, 2, id], 1));
        Assert.Equal("prompt", e.ParamName);
        Assert.Contains($"prompt token 2 is id {id}, outside the model's vocabulary [0, {EvaluationModels.Vocab})", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FullForwardGreedyDecoder_EqualsArgmaxOfThePlainForward()
    {
        using var model = EvaluationModels.Random(tied: true);
        long[] prompt = EvaluationModels.RandomTokens(40, 9);
        long[] ours = new FullForwardGreedyDecoder(model).Generate(prompt, 5);
        var sequence = prompt.ToList();
        using var noGrad = torch.no_grad();
        for (int i = 0; i < 5; i++)
        {
            using var scope = NewDisposeScope();
            Tensor logits = model.forward(torch.tensor(sequence.ToArray()).unsqueeze(0));
            sequence.Add(logits[0, -1].argmax().item<long>());
        }
        Assert.Equal(sequence.Skip(40), ours);
    }
}
