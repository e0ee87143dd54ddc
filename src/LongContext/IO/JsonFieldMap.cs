using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LongContext.IO;

/// <summary>
/// An immutable, ordered copy of some fields of a JSON object (name to value), compared by value: the fields of an HF
/// file that a typed record does not model, kept so that writing the file back passes them through.
/// </summary>
internal sealed class JsonFieldMap : IReadOnlyDictionary<string, JsonElement>, IEquatable<JsonFieldMap>
{
    private readonly KeyValuePair<string, JsonElement>[] _fields;
    private readonly Dictionary<string, JsonElement> _byName;

    private JsonFieldMap(IEnumerable<KeyValuePair<string, JsonElement>> fields)
    {
        _fields = fields.Select(kv => new KeyValuePair<string, JsonElement>(kv.Key, kv.Value.Clone())).ToArray();
        _byName = new Dictionary<string, JsonElement>(_fields, StringComparer.Ordinal);
    }

    /// <summary>A copy of <paramref name="fields"/>, or null for null (an existing map is reused).</summary>
    public static JsonFieldMap? CopyOf(IEnumerable<KeyValuePair<string, JsonElement>>? fields) => fields switch
    {
        null => null,
        JsonFieldMap map => map,
        _ => new JsonFieldMap(fields),
    };

    /// <summary>The named fields of <paramref name="json"/>, in its order (a null value is kept as JSON null).</summary>
    public static JsonFieldMap Of(JsonObject json, IEnumerable<string> names)
    {
        var wanted = new HashSet<string>(names, StringComparer.Ordinal);
        return new JsonFieldMap(json.Where(kv => wanted.Contains(kv.Key))
            .Select(kv => new KeyValuePair<string, JsonElement>(kv.Key, Element(kv.Value))));
    }

    /// <summary>A JSON node as a standalone element.</summary>
    public static JsonElement Element(JsonNode? node)
    {
        using JsonDocument document = JsonDocument.Parse(node?.ToJsonString() ?? "null");
        return document.RootElement.Clone();
    }

    /// <inheritdoc />
    public JsonElement this[string key] => _byName[key];

    /// <inheritdoc />
    public IEnumerable<string> Keys => _fields.Select(kv => kv.Key);

    /// <inheritdoc />
    public IEnumerable<JsonElement> Values => _fields.Select(kv => kv.Value);

    /// <inheritdoc />
    public int Count => _fields.Length;

    /// <inheritdoc />
    public bool ContainsKey(string key) => _byName.ContainsKey(key);

    /// <inheritdoc />
    public bool TryGetValue(string key, out JsonElement value) => _byName.TryGetValue(key, out value);

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, JsonElement>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, JsonElement>>)_fields).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Same names with the same JSON text (order aside).</summary>
    public bool Equals(JsonFieldMap? other)
        => other is not null && Count == other.Count
           && _fields.All(kv => other._byName.TryGetValue(kv.Key, out JsonElement v) && v.GetRawText() == kv.Value.GetRawText());

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is JsonFieldMap other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        int hash = 0;
        foreach (var kv in _fields) hash ^= HashCode.Combine(kv.Key, kv.Value.GetRawText());
        return hash;
    }
}
