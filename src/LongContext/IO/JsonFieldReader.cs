using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LongContext.IO;

/// <summary>
/// Typed reads of one JSON object of an HF file (<c>config.json</c> or an object inside it), the one place their
/// rules live: JSON <c>null</c> reads as absent (Python's <c>dict.get</c>); a number is any JSON number; an integer
/// is a JSON number with a whole value in the <see cref="int"/> range (<c>4096</c> or <c>4096.0</c>); booleans and
/// strings are exactly those JSON kinds. A value of the wrong kind throws an <see cref="InvalidDataException"/> that
/// names the file, the key (with its path), the value and what was expected. Every key a getter touches is marked
/// read, so the caller can list the keys nobody read (<see cref="Unread"/>).
/// </summary>
internal sealed class JsonFieldReader
{
    private readonly JsonObject _json;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    /// <summary>Reads <paramref name="json"/>, naming <paramref name="file"/> (and <paramref name="path"/>, the object's key path inside it) in messages.</summary>
    public JsonFieldReader(JsonObject json, string file, string? path = null)
    {
        _json = json ?? throw new ArgumentNullException(nameof(json));
        File = file ?? throw new ArgumentNullException(nameof(file));
        Path = path;
    }

    /// <summary>The file named in messages.</summary>
    public string File { get; }

    /// <summary>The key path of this object inside the file (<c>rope_parameters</c>), or null at the top level.</summary>
    public string? Path { get; }

    /// <summary>The keys of the object, in file order.</summary>
    public IReadOnlyList<string> Keys => _json.Select(kv => kv.Key).ToArray();

    /// <summary>The keys no getter has touched, in file order.</summary>
    public IReadOnlyList<string> Unread => _json.Select(kv => kv.Key).Where(k => !_read.Contains(k)).ToArray();

    /// <summary>The key with its path, as messages show it (<c>rope_parameters.factor</c>).</summary>
    public string Name(string key) => Path is null ? key : $"{Path}.{key}";

    /// <summary>Whether the key is present, even with a null value.</summary>
    public bool Contains(string key) => _json.ContainsKey(key);

    /// <summary>Whether the key is present with the value null.</summary>
    public bool IsNull(string key) => _json.ContainsKey(key) && _json[key] is null;

    /// <summary>Marks a key read without reading it (a field that is known and deliberately not used).</summary>
    public void MarkRead(string key) => _read.Add(key);

    /// <summary>The raw node (null when absent or null); marks the key read.</summary>
    public JsonNode? Node(string key)
    {
        _read.Add(key);
        return _json[key];
    }

    /// <summary>A string, or null when absent or null.</summary>
    public string? String(string key)
    {
        JsonNode? n = Node(key);
        if (n is null) return null;
        return n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : throw Invalid(key, "a string");
    }

    /// <summary>A finite number, or null when absent or null.</summary>
    public double? Number(string key)
    {
        JsonNode? n = Node(key);
        return n is null ? null : AsNumber(n) ?? throw Invalid(key, "a number");
    }

    /// <summary>An integer (a JSON number with a whole value in the int range), or null when absent or null.</summary>
    public int? Integer(string key)
    {
        JsonNode? n = Node(key);
        if (n is null) return null;
        double v = AsNumber(n) ?? throw Invalid(key, "an integer");
        return v == Math.Floor(v) && v >= int.MinValue && v <= int.MaxValue ? (int)v : throw Invalid(key, "an integer");
    }

    /// <summary>true or false, or null when absent or null.</summary>
    public bool? Boolean(string key)
    {
        JsonNode? n = Node(key);
        if (n is null) return null;
        return n.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Invalid(key, "true or false"),
        };
    }

    /// <summary>A list of finite numbers, or null when absent or null.</summary>
    public IReadOnlyList<double>? Numbers(string key)
    {
        JsonNode? n = Node(key);
        if (n is null) return null;
        if (n is not JsonArray array) throw Invalid(key, "a list of numbers");
        var values = new double[array.Count];
        for (int i = 0; i < values.Length; i++)
            values[i] = (array[i] is JsonNode e ? AsNumber(e) : null) ?? throw Invalid(key, "a list of numbers");
        return values;
    }

    /// <summary>A reader for an object value (path extended by the key), or null when absent or null.</summary>
    public JsonFieldReader? Object(string key)
    {
        JsonNode? n = Node(key);
        if (n is null) return null;
        return n is JsonObject obj ? new JsonFieldReader(obj, File, Name(key)) : throw Invalid(key, "an object or null");
    }

    /// <summary>The value of a key as JSON text (<c>null</c> when absent or null), for messages.</summary>
    public string Show(string key) => _json[key]?.ToJsonString() ?? "null";

    /// <summary>"<c>{file}: {key} must be {expected}; got {value}.</c>"</summary>
    public InvalidDataException Invalid(string key, string expected)
        => new($"{File}: {Name(key)} must be {expected}; got {Show(key)}.");

    /// <summary>An error about this file: "<c>{file}: {message}</c>".</summary>
    public InvalidDataException Error(string message, Exception? inner = null) => new($"{File}: {message}", inner);

    /// <summary>A warning about this file: "<c>{file}: {message}</c>".</summary>
    public string Warning(string message) => $"{File}: {message}";

    private static double? AsNumber(JsonNode n)
    {
        if (n.GetValueKind() != JsonValueKind.Number) return null;
        double v = double.Parse(n.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture);
        return double.IsFinite(v) ? v : null;
    }
}
