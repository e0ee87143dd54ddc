using LongContext.Tests.IO;
using LongContext.Tests.Support;
using LongContext.Text.Tokenization;
using Xunit.Abstractions;

namespace LongContext.Tests.Text;

/// <summary>
/// Seeded fuzzing of the tokenizer files a user downloads with a checkpoint: mutations of the fixture folders'
/// <c>tokenizer.model</c> (bytes, and the protobuf's lengths, tags, piece types, scores and texts, trainer and
/// normalizer fields), <c>tokenizer.json</c> (bytes, numbers, and vocabulary ids, merges, added tokens, pipeline
/// component types), <c>tokenizer_config.json</c>, and a <c>generation_config.json</c> / <c>config.json</c> with
/// special ids. Every <see cref="HfTokenizer.Load"/> either succeeds or throws one of its documented types for a bad
/// file (<see cref="InvalidDataException"/>, <see cref="NotSupportedException"/>); a tokenizer that loads must then
/// encode a text, decode what it encoded, and decode its special and edge ids without error. A failure prints the
/// seed, the case and the mutation. <c>LONGCONTEXT_FUZZ_SCALE=N</c> runs N times as many cases.
/// </summary>
[Trait(Category.Name, Category.Build)]
[Trait(Category.Name, TextCategory.Name)]
public sealed class TokenizerFileFuzzTests(ITestOutputHelper output)
{
    private const int Seed = 20251203;
    private const string ScaleVariable = "LONGCONTEXT_FUZZ_SCALE";

    /// <summary>A file that each case's description is written to before it runs (environment variable; default none).</summary>
    private static string? Trace => Environment.GetEnvironmentVariable("LONGCONTEXT_FUZZ_TRACE") is { Length: > 0 } t ? t : null;

    private static int Scale => int.TryParse(Environment.GetEnvironmentVariable(ScaleVariable), out int s) && s > 0 ? s : 1;

    private const string Sample = "Hello world, 123 <s> </s> <|begin_of_text|> naïve café 日本語 🎉  two  spaces\n\ttab";

    /// <summary>tokenizer_config.json fields that change ids or text.</summary>
    private static readonly string[] ConfigFields =
    [
        "bos_token", "eos_token", "pad_token", "unk_token", "add_bos_token", "add_eos_token", "model_max_length", "added_tokens_decoder",
        "clean_up_tokenization_spaces", "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", "tokenizer_class",
    ];

    private static readonly string[] IdFields = ["bos_token_id", "eos_token_id", "pad_token_id"];

    private static bool Documented(Exception e) => e is InvalidDataException or NotSupportedException;

    /// <summary>A copy of a fixture folder in a temp folder; null when the fixture root lacks it.</summary>
    private static TempFolder? Copy(string fixture)
    {
        string source = TokenizerFixtures.FolderPath(fixture);
        return Directory.Exists(source) ? new TempFolder().CopyFrom(source, "cases.json") : null;
    }

    /// <summary>
    /// Runs the cases: each writes one mutated file into the folder (restoring the others first), loads, and uses
    /// what loaded. Asserts every failure is documented and that enough mutations were rejected.
    /// </summary>
    private void Run(string what, TempFolder folder, int cases, IReadOnlyDictionary<string, byte[]> originals, Func<int, Random, (string File, byte[] Bytes, string What)> mutate, double minRejected = 0.25)
    {
        var outcomes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var bad = new List<string>();
        for (int i = 0; i < cases; i++)
        {
            var rng = new Random(Seed + i);
            var (file, bytes, mutation) = mutate(i, rng);
            foreach (var (name, original) in originals) File.WriteAllBytes(folder.File(name), original);
            File.WriteAllBytes(folder.File(file), bytes);
            // A native abort ends the test host with no assertion: the trace file then names the case that did it.
            if (Trace is { } trace) File.WriteAllText(trace, $"{what}: case {i} (seed {Seed + i}): {file}: {mutation}\n");
            string outcome;
            try
            {
                HfTokenizer tokenizer;
                try
                {
                    tokenizer = HfTokenizer.Load(folder.Path);
                }
                catch (Exception e) when (Documented(e))
                {
                    outcome = e.GetType().Name;
                    if (!originals.Keys.Append(file).Any(n => e.Message.Contains(n, StringComparison.Ordinal)))
                    {
                        outcome += " NAMING NO FILE";
                        bad.Add($"case {i} (seed {Seed + i}): {file}: {mutation}: {e.GetType().Name} names no file: {e.Message}");
                    }
                    outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                    continue;
                }
                using (tokenizer) Use(tokenizer);
                outcome = "loaded";
            }
            catch (Exception e)
            {
                outcome = "UNDOCUMENTED " + e.GetType().Name;
                bad.Add($"case {i} (seed {Seed + i}): {file}: {mutation}: {e.GetType().FullName}: {e.Message}");
            }
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        output.WriteLine($"{what}: {cases} cases: {string.Join(", ", outcomes.Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.True(bad.Count == 0, $"{bad.Count} of {cases} {what} mutations ended in an undocumented exception or a message naming no file:\n{string.Join("\n", bad.Take(15))}");
        int rejected = outcomes.Where(kv => kv.Key != "loaded").Sum(kv => kv.Value);
        Assert.True(rejected > cases * minRejected, $"{what}: only {rejected} of {cases} mutations were rejected; the mutator is not reaching the checks.");
    }

    /// <summary>
    /// What a user does with a tokenizer that loaded: encode (with and without special tokens), decode what came
    /// out (every id must name a token), and decode the special ids, the first and the last id one by one.
    /// </summary>
    private static void Use(HfTokenizer tokenizer)
    {
        Assert.True(tokenizer.VocabSize > 0, "a tokenizer with no tokens loaded");
        foreach (bool special in new[] { true, false })
        {
            int[] ids = tokenizer.Encode(Sample, special);
            foreach (int id in ids)
                Assert.True(id >= 0 && id < tokenizer.VocabSize, $"Encode gave id {id}, outside [0, {tokenizer.VocabSize})");
            tokenizer.Decode(ids);
            tokenizer.Decode(ids, skipSpecialTokens: true);
        }
        var edge = new List<int> { 0, tokenizer.VocabSize - 1, tokenizer.VocabSize / 2 };
        var s = tokenizer.SpecialTokens;
        foreach (int? id in new[] { s.Bos, s.Eos, s.Pad, s.Unk }) if (id is { } v) edge.Add(v);
        edge.AddRange(s.StopIds);
        foreach (int id in edge)
        {
            string token;
            try
            {
                token = tokenizer.IdToToken(id);
            }
            catch (ArgumentOutOfRangeException) when (!IsNamed(s, id))
            {
                continue;   // a hole in the id table: documented for IdToToken and Decode
            }
            Assert.NotNull(token);
            tokenizer.Decode([id]);
            tokenizer.Decode([id, id], skipSpecialTokens: true);
            tokenizer.IsSpecial(id);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([tokenizer.VocabSize]));
    }

    private static bool IsNamed(SpecialTokenIds s, int id) => s.Bos == id || s.Eos == id || s.Pad == id || s.Unk == id || s.StopIds.Contains(id);

    private static Dictionary<string, byte[]> Originals(TempFolder folder)
        => Directory.EnumerateFiles(folder.Path).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    [Fact]
    public void SentencePieceModel_MutatedFiles_LoadOrThrowDocumentedExceptions()
    {
        using var folder = Copy("spm_bpe");
        if (folder is null) return;
        var originals = Originals(folder);
        byte[] model = originals[HfTokenizer.SentencePieceModelName];
        Run(HfTokenizer.SentencePieceModelName, folder, 400 * Scale, originals, (i, rng) =>
        {
            var (bytes, what) = rng.Next(2) == 0 ? FileMutator.Bytes(model, rng, 1024) : TokenizerFileMutator.SentencePiece(model, rng);
            return (HfTokenizer.SentencePieceModelName, bytes, what);
        }, minRejected: 0.2);
    }

    [Theory]
    [InlineData("hf_bytelevel_bpe")]
    [InlineData("hf_metaspace_bpe")]
    public void TokenizerJson_MutatedFiles_LoadOrThrowDocumentedExceptions(string fixture)
    {
        using var folder = Copy(fixture);
        if (folder is null) return;
        var originals = Originals(folder);
        string json = System.Text.Encoding.UTF8.GetString(originals[HfTokenizer.TokenizerJsonName]);
        string[] focus = ["model", "added_tokens", "pre_tokenizer", "decoder", "normalizer", "post_processor", "truncation", "padding", "version"];
        Run($"{fixture}/{HfTokenizer.TokenizerJsonName}", folder, 150 * Scale, originals, (i, rng) =>
        {
            switch (rng.Next(8))
            {
                case 0:
                {
                    var (b, what) = FileMutator.Bytes(FileMutator.Utf8(json), rng, json.Length);
                    return (HfTokenizer.TokenizerJsonName, b, what);
                }
                case 1:
                {
                    var (text, what) = FileMutator.HugeNumber(json, rng);
                    return (HfTokenizer.TokenizerJsonName, FileMutator.Utf8(text), what);
                }
                case 2:
                {
                    var (text, what) = FileMutator.JsonField(json, rng, focus);
                    return (HfTokenizer.TokenizerJsonName, FileMutator.Utf8(text), what);
                }
                default:
                {
                    var (text, what) = TokenizerFileMutator.TokenizerJson(json, rng);
                    if (rng.Next(4) == 0)
                    {
                        var (more, also) = TokenizerFileMutator.TokenizerJson(text, rng);
                        (text, what) = (more, $"{what}, and {also}");
                    }
                    return (HfTokenizer.TokenizerJsonName, FileMutator.Utf8(text), what);
                }
            }
        });
    }

    [Theory]
    [InlineData("spm_bpe")]
    [InlineData("hf_bytelevel_bpe")]
    [InlineData("hf_metaspace_bpe")]
    public void TokenizerConfig_MutatedFiles_LoadOrThrowDocumentedExceptions(string fixture)
    {
        using var folder = Copy(fixture);
        if (folder is null) return;
        var originals = Originals(folder);
        string config = System.Text.Encoding.UTF8.GetString(originals[HfTokenizer.TokenizerConfigName]);
        Run($"{fixture}/{HfTokenizer.TokenizerConfigName}", folder, 100 * Scale, originals, (i, rng) =>
        {
            (string text, string what) = rng.Next(5) switch
            {
                0 => Bytes(config, rng),
                1 => FileMutator.HugeNumber(config, rng),
                2 => AddedTokensDecoderKey(config, rng),
                _ => FileMutator.JsonField(config, rng, ConfigFields),
            };
            return (HfTokenizer.TokenizerConfigName, FileMutator.Utf8(text), what);
        });
    }

    [Theory]
    [InlineData("spm_bpe", HfTokenizer.GenerationConfigName)]
    [InlineData("spm_bpe", HfTokenizer.ConfigName)]
    [InlineData("hf_bytelevel_bpe", HfTokenizer.GenerationConfigName)]
    [InlineData("hf_metaspace_bpe", HfTokenizer.ConfigName)]
    public void SpecialIdFiles_MutatedFiles_LoadOrThrowDocumentedExceptions(string fixture, string file)
    {
        using var folder = Copy(fixture);
        if (folder is null) return;
        // The token names of tokenizer_config.json would win over the ids: without it, the ids are used.
        File.Delete(folder.File(HfTokenizer.TokenizerConfigName));
        var originals = Originals(folder);
        const string SeedJson = """{"bos_token_id": 1, "eos_token_id": [2, 1], "pad_token_id": 0, "max_length": 4096, "temperature": 0.6, "vocab_size": 32000}""";
        Run($"{fixture}/{file}", folder, 60 * Scale, originals, (i, rng) =>
        {
            string text = SeedJson;
            string what;
            switch (rng.Next(4))
            {
                case 0: (text, what) = Bytes(SeedJson, rng); break;
                case 1: (text, what) = FileMutator.HugeNumber(SeedJson, rng); break;
                default:
                {
                    var parts = new List<string>();
                    int n = 1 + rng.Next(3);
                    var root = System.Text.Json.Nodes.JsonNode.Parse(SeedJson)!.AsObject();
                    for (int k = 0; k < n; k++)
                    {
                        string field = IdFields[rng.Next(IdFields.Length)], value = TokenizerFileMutator.IdValues[rng.Next(TokenizerFileMutator.IdValues.Length)];
                        root[field] = System.Text.Json.Nodes.JsonNode.Parse(value);
                        parts.Add($"{field} = {value}");
                    }
                    (text, what) = (root.ToJsonString(), string.Join(", ", parts));
                    break;
                }
            }
            return (file, FileMutator.Utf8(text), what);
        }, minRejected: 0.15);
    }

    private static (string Text, string What) Bytes(string text, Random rng)
    {
        var (b, what) = FileMutator.Bytes(FileMutator.Utf8(text), rng, text.Length);
        return (System.Text.Encoding.UTF8.GetString(b), what);
    }

    /// <summary>An <c>added_tokens_decoder</c> key (an id) or entry changed: huge, negative, not a number, another token's content.</summary>
    private static (string Text, string What) AddedTokensDecoderKey(string text, Random rng)
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(text)!.AsObject();
        if (root["added_tokens_decoder"] is not System.Text.Json.Nodes.JsonObject decoder || decoder.Count == 0)
        {
            root["added_tokens_decoder"] = System.Text.Json.Nodes.JsonNode.Parse("""{"2147483647": {"content": "<s>", "special": true}}""");
            return (root.ToJsonString(), "added_tokens_decoder added with id 2147483647");
        }
        var keys = decoder.Select(kv => kv.Key).ToList();
        string key = keys[rng.Next(keys.Count)];
        string[] newKeys = ["-1", "2147483647", "2147483648", "99999999999999999999", "1e3", " 1", "x", "", "0", "1", "5", "1999", "2002", "+1", "01"];
        string newKey = newKeys[rng.Next(newKeys.Length)];
        var entry = decoder[key]!.DeepClone();
        decoder.Remove(key);
        if (rng.Next(3) == 0 && entry is System.Text.Json.Nodes.JsonObject o)
        {
            string[] contents = ["\"<s>\"", "\"</s>\"", "\"zz_missing\"", "\"\"", "null", "1", "[]"];
            string c = contents[rng.Next(contents.Length)];
            o["content"] = System.Text.Json.Nodes.JsonNode.Parse(c);
            decoder[key] = entry;
            return (root.ToJsonString(), $"added_tokens_decoder.{key}.content = {c}");
        }
        decoder[newKey] = entry;
        return (root.ToJsonString(), $"added_tokens_decoder key {key} -> '{newKey}'");
    }
}
