using System.Text.Json;
using System.Text.Json.Nodes;

namespace LongContext.Text.HfFiles;

/// <summary>
/// What LongContext reads of an HF <c>tokenizer.json</c> itself (the pipeline runs in HF tokenizers): the model
/// type (BPE only; others throw <see cref="NotSupportedException"/>), the id -> token table (model vocabulary plus added tokens,
/// at the ids HF tokenizers assigns them, with a warning where the file says otherwise) and which added tokens are special; it refuses, naming the field, the
/// pipeline settings on which HF tokenizers' Rust code panics (aborting the process) instead of returning an error. It also
/// writes the two variants <see cref="Tokenization.HfTokenizer"/> loads: the file as transformers uses it
/// (truncation and padding off) and the same without post-processor and with no token marked special (encode
/// without special tokens, decode keeping them).
/// </summary>
internal sealed class TokenizerJsonFile
{
    private TokenizerJsonFile(string path, JsonObject root, string?[] tokens, HashSet<int> special, string? unkToken, IReadOnlyList<string> warnings)
    {
        Warnings = warnings;
        Path = path;
        _root = root;
        Tokens = tokens;
        SpecialIds = special;
        UnkToken = unkToken;
    }

    private readonly JsonObject _root;

    public string Path { get; }

    /// <summary>Token string by id; null where no token has that id.</summary>
    public string?[] Tokens { get; }

    /// <summary>Ids of added tokens marked <c>special</c>.</summary>
    public HashSet<int> SpecialIds { get; }

    /// <summary>What the file holds that HF tokenizers reads otherwise, or skips, with a warning only (the table follows HF).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary><c>model.unk_token</c>, if any.</summary>
    public string? UnkToken { get; }

    /// <summary>Whether <c>truncation</c> or <c>padding</c> is set in the file (transformers overrides both per call).</summary>
    public IEnumerable<string> SetButOverridden()
    {
        foreach (string key in new[] { "truncation", "padding" })
            if (_root[key] is not null) yield return key;
    }

    public static TokenizerJsonFile Read(string path)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new InvalidDataException($"'{path}' must hold a JSON object.");
            // JsonObject fills its dictionary on first use and throws ArgumentException for a key that appears twice
            // in one object: visit the whole tree now so that a repeated key is reported here, naming the file.
            VisitAll(root);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"'{path}' has a JSON object with a repeated key ({e.Message}); each key may appear once.", e);
        }
        if (root["model"] is not JsonObject model) throw new InvalidDataException($"'{path}' has no 'model' object.");
        string type = model["type"] is JsonValue t && t.TryGetValue(out string? s) ? s : "BPE";   // HF's untagged default
        if (!string.Equals(type, "BPE", StringComparison.Ordinal))
            throw new NotSupportedException(
                $"'{path}': model type '{type}' is not supported; LongContext reads BPE tokenizers " +
                "(byte-level as Llama-3 and Qwen write them, Metaspace with byte fallback as HF writes Llama-2's).");
        if (model["vocab"] is not JsonObject vocab)
            throw new InvalidDataException($"'{path}': 'model.vocab' must be an object of token -> id.");

        var byId = new Dictionary<int, string>();
        var vocabIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach ((string token, JsonNode? idNode) in vocab)
        {
            int id = Id(idNode, $"model.vocab[\"{token}\"]", path);
            byId[id] = token;
            vocabIds[token] = id;
        }
        var special = new HashSet<int>();
        var warnings = new List<string>();
        if (root["added_tokens"] is JsonArray added)
        {
            // HF tokenizers does not take the ids written here: a token of model.vocab keeps its vocabulary id, any
            // other gets the next id from the vocabulary's size on (AddedVocabulary.add_tokens); an empty or repeated
            // content is dropped. A file whose ids differ would encode to ids this table names otherwise.
            int next = vocab.Count;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < added.Count; i++)
            {
                JsonNode? a = added[i];
                if (a is not JsonObject o || o["content"] is not JsonValue c || !c.TryGetValue(out string? content))
                    throw new InvalidDataException($"'{path}': every 'added_tokens' entry needs 'id' and 'content'; got {Short(a)} at index {i}.");
                string field = $"added_tokens[{i}] (\"{content}\")";
                int id = Id(o["id"], field + ".id", path);
                if (content.Length == 0 || !seen.Add(content))
                {
                    warnings.Add($"'{path}': {field} has {(content.Length == 0 ? "an empty content" : "the content of an earlier entry")}; " +
                        $"skipped (id {id} is not read from it), as HF tokenizers skips it.");
                    continue;
                }
                int expected = vocabIds.TryGetValue(content, out int inVocab) ? inVocab : next++;
                if (id != expected)
                    warnings.Add(
                        $"'{path}': {field} has id {id}, but HF tokenizers gives it id {expected} " +
                        (vocabIds.ContainsKey(content)
                            ? "(its id in model.vocab)"
                            : $"(it is not in model.vocab, whose {vocab.Count} entries put the added tokens from id {vocab.Count} on, in file order)") +
                        $"; read as id {expected}, as HF tokenizers encodes it (it only warns).");
                byId[expected] = content;
                if (o["special"] is JsonValue sp && sp.TryGetValue(out bool isSpecial) && isSpecial) special.Add(expected);
            }
        }
        int maxId = byId.Count == 0 ? -1 : byId.Keys.Max();
        if (maxId >= Math.Max(2L * byId.Count, byId.Count + 1024L))
        {
            string where = byId[maxId] is var t0 && vocabIds.TryGetValue(t0, out int v0) && v0 == maxId ? $"model.vocab[\"{t0}\"]" : $"added token \"{byId[maxId]}\"";
            throw new InvalidDataException(
                $"'{path}': {where} has id {maxId}, but the file has only {byId.Count} token ids; ids must be dense " +
                "(the id table would be mostly holes), as a tokenizer's ids index the model's embedding rows.");
        }
        var tokens = new string?[maxId + 1];
        foreach ((int id, string token) in byId) tokens[id] = token;
        CheckPipeline(root, model, path, tokens);
        string? unk = model["unk_token"] is JsonValue u && u.TryGetValue(out string? us) ? us : null;
        return new TokenizerJsonFile(path, root, tokens, special, unk, warnings);
    }

    /// <summary>
    /// Refuses the pipeline settings that make HF tokenizers (0.22) abort the whole process, by a Rust panic that no
    /// error result reports, at load or at the first encode or decode; each named by its field:
    /// <list type="bullet">
    /// <item>a <c>Precompiled</c> normalizer (a SentencePiece character map): its reader panics on a missing or
    /// malformed <c>precompiled_charsmap</c> (<c>normalizers/mod.rs</c>, <c>.expect("Precompiled")</c>), and a map
    /// that parses but holds out-of-range trie offsets panics at encode; LongContext's SentencePiece path does not run
    /// such maps either (<see cref="NotSupportedException"/>).</item>
    /// <item>a <c>Strip</c> decoder with <c>stop</c> above 0: it indexes before the start of a token made only of its
    /// character (<c>decoders/strip.rs</c>); HF's converters write <c>stop</c> 0 (<see cref="NotSupportedException"/>).</item>
    /// <item>a component that is not a JSON object (HF reads an array such as <c>[""]</c> as a <c>Prepend</c> of
    /// <c>""</c>), and a <c>Prepend</c> normalizer of <c>""</c> (<c>NormalizedString::transform_range</c>).</item>
    /// <item>a <c>Replace</c> normalizer whose pattern matches the empty string (an empty <c>String</c>, a regex
    /// such as <c>a*</c>): <c>transform_range</c> indexes past the end.</item>
    /// <item>a <c>FixedLength</c> pre-tokenizer of <c>length</c> 0 (<c>chunks(0)</c>).</item>
    /// <item>a <c>TemplateProcessing</c> post-processor whose <c>single</c> template uses sequence B, which a single
    /// text does not have.</item>
    /// <item>a <c>TemplateProcessing</c> template naming a special token that its <c>special_tokens</c> lacks (HF
    /// looks it up unchecked at encode), and special tokens with ids the file does not have.</item>
    /// <item>a BPE <c>continuing_subword_prefix</c> longer than the right side of a merge, or ending inside one of its
    /// characters (<c>models/bpe/model.rs</c> slices the right side by the prefix's byte length).</item>
    /// </list>
    /// </summary>
    private static void CheckPipeline(JsonObject root, JsonObject model, string path, string?[] tokens)
    {
        Walk(root["normalizer"], "normalizer", "normalizers", (o, type, field) =>
        {
            if (type == "Precompiled")
                throw new NotSupportedException(
                    $"'{path}': '{field}' is a Precompiled normalizer (a SentencePiece precompiled character map); not supported: " +
                    "LongContext reads BPE tokenizers with byte-level or Metaspace pre-tokenization and plain normalizers (Llama-2, Llama-3, Mistral, Qwen).");
            if ((type is "Prepend" or null) && o["prepend"] is JsonValue pre && pre.TryGetValue(out string? prepended) && prepended.Length == 0)
                throw new InvalidDataException($"'{path}': '{field}.prepend' is \"\"; a Prepend normalizer needs a non-empty text (HF tokenizers aborts on an empty one).");
            if ((type is "Replace" or null) && o["pattern"] is JsonObject pattern && MatchesEmpty(pattern) is { } empty)
                throw new InvalidDataException(
                    $"'{path}': '{field}.pattern' is {empty}, which matches the empty string; a Replace normalizer needs a pattern that " +
                    "matches at least one character (HF tokenizers aborts the process on an empty match).");
        }, path);
        Walk(root["pre_tokenizer"], "pre_tokenizer", "pretokenizers", (o, type, field) =>
        {
            if (type == "FixedLength" && o["length"] is JsonValue l && l.TryGetValue(out long length) && length == 0)
                throw new InvalidDataException($"'{path}': '{field}.length' is 0; a FixedLength pre-tokenizer needs a positive length.");
        }, path);
        Walk(root["decoder"], "decoder", "decoders", (o, type, field) =>
        {
            if (type == "Strip" && o["stop"] is JsonValue st && st.TryGetValue(out double stop) && stop != 0)
                throw new NotSupportedException(
                    $"'{path}': '{field}.stop' is {st.ToJsonString()}; a Strip decoder that strips from the end is not supported (HF tokenizers " +
                    "aborts the process on a token made only of the stripped character). HF's converters write stop 0.");
        }, path);
        Walk(root["post_processor"], "post_processor", "processors", (o, type, field) =>
        {
            if (type != "TemplateProcessing") return;
            CheckTemplateSpecialTokens(o, field, path, tokens);
            if (o["single"] is not JsonArray single) return;
            foreach (JsonNode? piece in single)
            {
                bool usesB = piece switch
                {
                    JsonObject p => p["Sequence"] is JsonObject seq && seq["id"] is JsonValue id && id.TryGetValue(out string? name) && name == "B",
                    JsonValue v => v.TryGetValue(out string? text) && (text.StartsWith("$B", StringComparison.Ordinal) || text.StartsWith("$1", StringComparison.Ordinal)),
                    _ => false,
                };
                if (usesB)
                    throw new InvalidDataException(
                        $"'{path}': '{field}.single' uses sequence B ({Short(piece)}); the template for a single text can only use sequence A.");
            }
        }, path);
        if (model["continuing_subword_prefix"] is JsonValue pv && pv.TryGetValue(out string? prefix) && prefix.Length > 0 && model["merges"] is JsonArray merges)
        {
            int prefixBytes = System.Text.Encoding.UTF8.GetByteCount(prefix);
            for (int i = 0; i < merges.Count; i++)
            {
                string? right = merges[i] switch
                {
                    JsonArray { Count: 2 } pair when pair[1] is JsonValue r && r.TryGetValue(out string? rs) => rs,
                    JsonValue line when line.TryGetValue(out string? ls) && ls.Split(' ') is { Length: 2 } parts => parts[1],
                    _ => null,
                };
                if (right is null) continue;   // a malformed merge: HF tokenizers reports it
                byte[] bytes = System.Text.Encoding.UTF8.GetBytes(right);
                if (bytes.Length < prefixBytes || (bytes.Length > prefixBytes && (bytes[prefixBytes] & 0xC0) == 0x80))
                    throw new InvalidDataException(
                        $"'{path}': 'model.merges[{i}]' has right side \"{right}\", shorter than model.continuing_subword_prefix \"{prefix}\" " +
                        $"({prefixBytes} bytes) or cut inside a character by it; the right side of a merge starts with that prefix.");
            }
        }
    }

    /// <summary>
    /// A <c>TemplateProcessing</c>'s special tokens: each one its templates name must be in <c>special_tokens</c>
    /// (HF looks it up unchecked at encode: <c>processors/template.rs</c>), with as many <c>ids</c> as
    /// <c>tokens</c>, each id one of the file's tokens (else encoding yields ids the vocabulary lacks).
    /// </summary>
    private static void CheckTemplateSpecialTokens(JsonObject o, string field, string path, string?[] tokens)
    {
        var defined = o["special_tokens"] as JsonObject;
        if (defined is not null)
        {
            foreach ((string name, JsonNode? entry) in defined)
            {
                if (entry is not JsonObject e || e["ids"] is not JsonArray ids || e["tokens"] is not JsonArray names) continue;   // HF reports a malformed entry
                if (ids.Count != names.Count)
                    throw new InvalidDataException(
                        $"'{path}': '{field}.special_tokens[\"{name}\"]' has {ids.Count} ids and {names.Count} tokens; each id needs its token.");
                foreach (JsonNode? idNode in ids)
                    if (idNode is JsonValue v && v.TryGetValue(out long id) && (id < 0 || id >= tokens.Length || tokens[id] is null))
                        throw new InvalidDataException(
                            $"'{path}': '{field}.special_tokens[\"{name}\"].ids' has {id}, which names no token of the file ({tokens.Length} ids).");
            }
        }
        foreach (string template in new[] { "single", "pair" })
        {
            if (o[template] is not JsonArray pieces) continue;
            foreach (JsonNode? piece in pieces)
            {
                string? name = piece switch
                {
                    JsonObject p => p["SpecialToken"] is JsonObject sp && sp["id"] is JsonValue id && id.TryGetValue(out string? n) ? n : null,
                    JsonValue v when v.TryGetValue(out string? text) && !text.StartsWith('$') => text.Split(':')[0],
                    _ => null,
                };
                if (name is not null && defined?.ContainsKey(name) != true)
                    throw new InvalidDataException(
                        $"'{path}': '{field}.{template}' uses the special token \"{name}\", which '{field}.special_tokens' does not define.");
            }
        }
    }

    /// <summary>
    /// The pattern's JSON when a Replace pattern (<c>{"String": ...}</c> or <c>{"Regex": ...}</c>) matches the empty
    /// string, else null. A regex is tried with .NET's engine on a few texts (HF uses Oniguruma; for the patterns
    /// tokenizer files use the two agree); one .NET cannot parse is left to HF tokenizers, which reports it.
    /// </summary>
    private static string? MatchesEmpty(JsonObject pattern)
    {
        if (pattern["String"] is JsonValue sv && sv.TryGetValue(out string? literal))
            return literal.Length == 0 ? Short(pattern) : null;
        if (pattern["Regex"] is not JsonValue rv || !rv.TryGetValue(out string? regex)) return null;
        try
        {
            var r = new System.Text.RegularExpressions.Regex(regex, System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromMilliseconds(200));
            foreach (string probe in new[] { "", " ", "a", "Hello, world 123", "\u2581x\n" })
                foreach (System.Text.RegularExpressions.Match m in r.Matches(probe))
                    if (m.Length == 0) return Short(pattern);
            return null;
        }
        catch (Exception e) when (e is ArgumentException or System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            return null;
        }
    }

    /// <summary>Calls <paramref name="check"/> on a pipeline component and, for a <c>Sequence</c>, on each member (by its typed field).</summary>
    private static void Walk(JsonNode? node, string field, string membersKey, Action<JsonObject, string?, string> check, string path)
    {
        if (node is null) return;
        // HF tokenizers also reads untyped values by trying each component in turn: an array such as [""] reads as
        // a Prepend of "" (a struct from a sequence), which aborts the process at the first encode.
        if (node is not JsonObject o)
            throw new InvalidDataException($"'{path}': '{field}' must be a pipeline component (a JSON object with a 'type') or null; got {Short(node)}.");
        string? type = o["type"] is JsonValue t && t.TryGetValue(out string? s) ? s : null;
        check(o, type, field);
        if (o[membersKey] is JsonArray members)
            for (int i = 0; i < members.Count; i++) Walk(members[i], $"{field}.{membersKey}[{i}]", membersKey, check, path);
    }

    private static void VisitAll(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o: foreach (var kv in o) VisitAll(kv.Value); break;
            case JsonArray a: foreach (JsonNode? item in a) VisitAll(item); break;
        }
    }

    private static string Short(JsonNode? node)
    {
        string text = node?.ToJsonString() ?? "null";
        return text.Length > 80 ? text[..80] + "..." : text;
    }

    private static int Id(JsonNode? node, string field, string path)
        => node is JsonValue v && v.TryGetValue(out int id) && id >= 0
            ? id
            : throw new InvalidDataException($"'{path}': '{field}' must be a non-negative integer id; got {(node is null ? "nothing" : Short(node))}.");

    /// <summary>The pipeline with special tokens: the file as transformers runs it (truncation and padding off).</summary>
    public string WithSpecialTokensJson()
    {
        var copy = (JsonObject)_root.DeepClone();
        copy["truncation"] = null;
        copy["padding"] = null;
        return copy.ToJsonString();
    }

    /// <summary>
    /// The pipeline without special tokens: no post-processor (what <c>add_special_tokens=false</c> gives: HF's
    /// template adds nothing then, and the byte-level post-processor only moves offsets) and every added token
    /// marked non-special, so that Tokenizers.DotNet's decode (always <c>skip_special_tokens=true</c>) keeps them.
    /// Added tokens are split out of the text the same way whether special or not (HF's <c>AddedVocabulary</c>
    /// matches both in one pass, by their <c>normalized</c> flag), so encoding is unchanged.
    /// </summary>
    public string WithoutSpecialTokensJson()
    {
        var copy = (JsonObject)_root.DeepClone();
        copy["truncation"] = null;
        copy["padding"] = null;
        copy["post_processor"] = null;
        if (copy["added_tokens"] is JsonArray added)
            foreach (JsonNode? a in added)
                if (a is JsonObject o) o["special"] = false;
        return copy.ToJsonString();
    }
}
