using System.Text.Json;

namespace LongContext.Text.HfFiles;

/// <summary>An added token as <c>tokenizer_config.json</c>'s <c>added_tokens_decoder</c> lists it.</summary>
internal sealed record AddedTokenEntry(int Id, string Content, bool Special);

/// <summary>
/// The fields of <c>tokenizer_config.json</c> that change ids or text. Both shapes in the wild are read: Llama-2's
/// (special tokens as <c>{"__type": "AddedToken", "content": ...}</c> objects) and the newer one
/// (<c>added_tokens_decoder</c> plus plain strings). <c>model_max_length</c> is often transformers' "no limit"
/// sentinel 1e30, which fits no integer type: any value that is not an Int64 reads as null (no limit).
/// </summary>
internal sealed record TokenizerConfigFile
{
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }
    public string? PadToken { get; init; }
    public string? UnkToken { get; init; }
    public bool? AddBosToken { get; init; }
    public bool? AddEosToken { get; init; }
    public long? ModelMaxLength { get; init; }
    public bool? CleanUpTokenizationSpaces { get; init; }
    /// <summary><c>clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output</c> (transformers 5.7 and later).</summary>
    public bool? CleanUpTokenizationSpacesForBpe { get; init; }
    public string? TokenizerClass { get; init; }
    public IReadOnlyList<AddedTokenEntry> AddedTokens { get; init; } = [];

    /// <summary>transformers' key that applies <c>clean_up_tokenization_spaces</c> to BPE tokenizers after all.</summary>
    public const string CleanUpForBpeKey = "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output";

    /// <summary>The file, or an empty config when the folder has none.</summary>
    public static TokenizerConfigFile ReadOrEmpty(string path)
    {
        if (!File.Exists(path)) return new TokenizerConfigFile();
        using JsonDocument doc = JsonFields.Parse(path);
        JsonElement root = JsonFields.RootObject(doc, path);
        return new TokenizerConfigFile
        {
            BosToken = Token(root, "bos_token", path),
            EosToken = Token(root, "eos_token", path),
            PadToken = Token(root, "pad_token", path),
            UnkToken = Token(root, "unk_token", path),
            AddBosToken = JsonFields.Bool(root, "add_bos_token", path),
            AddEosToken = JsonFields.Bool(root, "add_eos_token", path),
            ModelMaxLength = MaxLength(root, path),
            CleanUpTokenizationSpaces = JsonFields.Bool(root, "clean_up_tokenization_spaces", path),
            CleanUpTokenizationSpacesForBpe = JsonFields.Bool(root, CleanUpForBpeKey, path),
            TokenizerClass = JsonFields.String(root, "tokenizer_class", path),
            AddedTokens = AddedTokensDecoder(root, path),
        };
    }

    /// <summary>A special token: a string, an AddedToken object (its <c>content</c>), or null.</summary>
    private static string? Token(JsonElement root, string name, string path)
    {
        if (JsonFields.Optional(root, name) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out JsonElement c) && c.ValueKind == JsonValueKind.String)
            return c.GetString();
        throw JsonFields.Bad(path, name, v, "a string or an AddedToken object with a string 'content'");
    }

    private static long? MaxLength(JsonElement root, string path)
    {
        if (JsonFields.Optional(root, "model_max_length") is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw JsonFields.Bad(path, "model_max_length", v, "a number");
        if (v.TryGetInt64(out long n)) return n > 0 ? n : throw JsonFields.Bad(path, "model_max_length", v, "positive");
        return null;   // 1e30 and other values past Int64: transformers' VERY_LARGE_INTEGER, i.e. no limit
    }

    private static IReadOnlyList<AddedTokenEntry> AddedTokensDecoder(JsonElement root, string path)
    {
        if (JsonFields.Optional(root, "added_tokens_decoder") is not { } v) return [];
        if (v.ValueKind != JsonValueKind.Object) throw JsonFields.Bad(path, "added_tokens_decoder", v, "an object of id -> token");
        var list = new List<AddedTokenEntry>();
        foreach (JsonProperty p in v.EnumerateObject())
        {
            string field = $"added_tokens_decoder.{p.Name}";
            if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id))
                throw new InvalidDataException($"'{path}': '{field}' must be keyed by a token id; got '{p.Name}'.");
            if (p.Value.ValueKind != JsonValueKind.Object) throw JsonFields.Bad(path, field, p.Value, "an AddedToken object");
            string content = JsonFields.String(p.Value, "content", path) ?? throw JsonFields.Bad(path, field, p.Value, "an object with 'content'");
            list.Add(new AddedTokenEntry(id, content, JsonFields.Bool(p.Value, "special", path) ?? false));
        }
        return list;
    }
}
