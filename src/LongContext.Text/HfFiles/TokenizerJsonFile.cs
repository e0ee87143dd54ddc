using System.Text.Json;
using System.Text.Json.Nodes;

namespace LongContext.Text.HfFiles;

/// <summary>
/// What LongContext reads of an HF <c>tokenizer.json</c> itself (the pipeline runs in HF tokenizers): the model
/// type (BPE only; others throw <see cref="NotSupportedException"/>), the id -> token table (model vocabulary plus added tokens) and which added tokens are special. It also
/// writes the two variants <see cref="Tokenization.HfTokenizer"/> loads: the file as transformers uses it
/// (truncation and padding off) and the same without post-processor and with no token marked special (encode
/// without special tokens, decode keeping them).
/// </summary>
internal sealed class TokenizerJsonFile
{
    private TokenizerJsonFile(string path, JsonObject root, string?[] tokens, HashSet<int> special, string? unkToken)
    {
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
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
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
        foreach ((string token, JsonNode? idNode) in vocab)
            byId[Id(idNode, $"model.vocab[\"{token}\"]", path)] = token;
        var special = new HashSet<int>();
        if (root["added_tokens"] is JsonArray added)
        {
            foreach (JsonNode? a in added)
            {
                if (a is not JsonObject o || o["content"] is not JsonValue c || !c.TryGetValue(out string? content))
                    throw new InvalidDataException($"'{path}': every 'added_tokens' entry needs 'id' and 'content'; got {a?.ToJsonString()}.");
                int id = Id(o["id"], $"added_tokens[\"{content}\"].id", path);
                byId[id] = content;
                if (o["special"] is JsonValue sp && sp.TryGetValue(out bool isSpecial) && isSpecial) special.Add(id);
            }
        }
        var tokens = new string?[byId.Count == 0 ? 0 : byId.Keys.Max() + 1];
        foreach ((int id, string token) in byId) tokens[id] = token;
        string? unk = model["unk_token"] is JsonValue u && u.TryGetValue(out string? us) ? us : null;
        return new TokenizerJsonFile(path, root, tokens, special, unk);
    }

    private static int Id(JsonNode? node, string field, string path)
        => node is JsonValue v && v.TryGetValue(out int id) && id >= 0
            ? id
            : throw new InvalidDataException($"'{path}': '{field}' must be a non-negative integer id; got {node?.ToJsonString() ?? "nothing"}.");

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
