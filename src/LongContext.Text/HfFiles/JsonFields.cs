using System.Text.Json;

namespace LongContext.Text.HfFiles;

/// <summary>Typed reads of optional fields of an HF JSON file; a field of the wrong type throws naming file, field and value.</summary>
internal static class JsonFields
{
    public static JsonDocument Parse(string path)
    {
        string text;
        // Strict UTF-8 first: JsonDocument defers checking the bytes inside strings until they are read (an InvalidOperationException then).
        try { text = new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path)); }
        catch (System.Text.DecoderFallbackException e) { throw new InvalidDataException($"'{path}' is not valid UTF-8: {e.Message}", e); }
        try
        {
            return JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }

    public static JsonElement RootObject(JsonDocument doc, string path)
        => doc.RootElement.ValueKind == JsonValueKind.Object
            ? doc.RootElement
            : throw new InvalidDataException($"'{path}' must hold a JSON object; it holds a {doc.RootElement.ValueKind}.");

    /// <summary>The field, or null when it is absent or JSON null.</summary>
    public static JsonElement? Optional(JsonElement obj, string name)
        => obj.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static bool? Bool(JsonElement obj, string name, string path)
        => Optional(obj, name) is not { } v ? null
            : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
            : throw Bad(path, name, v, "true or false");

    public static string? String(JsonElement obj, string name, string path)
        => Optional(obj, name) is not { } v ? null
            : v.ValueKind == JsonValueKind.String ? v.GetString()
            : throw Bad(path, name, v, "a string");

    public static int? Int(JsonElement obj, string name, string path)
        => Optional(obj, name) is not { } v ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i
            : throw Bad(path, name, v, "an integer");

    /// <summary>An integer or a list of integers (HF's <c>eos_token_id</c>); null when absent.</summary>
    public static IReadOnlyList<int>? IntOrIntList(JsonElement obj, string name, string path)
    {
        if (Optional(obj, name) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int one)) return [one];
        if (v.ValueKind == JsonValueKind.Array)
        {
            var list = new List<int>();
            foreach (JsonElement e in v.EnumerateArray())
                list.Add(e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : throw Bad(path, name, v, "an integer or a list of integers"));
            return list;
        }
        throw Bad(path, name, v, "an integer or a list of integers");
    }

    public static InvalidDataException Bad(string path, string name, JsonElement value, string expected)
    {
        string raw = value.GetRawText();
        if (raw.Length > 80) raw = raw[..80] + "...";
        return new InvalidDataException($"'{path}': '{name}' must be {expected}; got {raw}.");
    }
}
