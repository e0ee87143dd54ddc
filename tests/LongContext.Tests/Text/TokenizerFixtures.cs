using System.Collections.Concurrent;
using System.Text.Json;
using LongContext.Tests.Support;
using LongContext.Text.Tokenization;

namespace LongContext.Tests.Text;

/// <summary>Trait value for the text tests (<c>dotnet test --filter Category=Text</c>).</summary>
public static class TextCategory
{
    /// <summary>Tokenizers, corpus reading and packing.</summary>
    public const string Name = "Text";
}

/// <summary>One entry of a tokenizer folder's <c>cases.json</c>; fields a set may omit are null.</summary>
public sealed record TokenizerCase(string Name, string Text, int[] Ids, int[] IdsWithSpecial, string[]? Tokens,
    string? Decoded, string? DecodedWithSpecial, string? DecodedSkipSpecial);

/// <summary>One entry of a folder's <c>random_decode.json</c>: drawn ids and the reference decode (null where omitted).</summary>
public sealed record TokenizerDecodeCase(string Name, int[] Ids, string? DecodedWithSpecial, string? DecodedSkipSpecial);

/// <summary>
/// The tokenizer fixture folders (<c>tokenizers/*/cases.json</c> under the fixture root) and their cases, and one
/// loaded tokenizer per folder shared by the tests of a class.
/// </summary>
public sealed class TokenizerFixtures : IDisposable
{
    private readonly ConcurrentDictionary<string, HfTokenizer> _loaded = new();

    /// <summary>Fixture folder names that hold a <c>cases.json</c>, sorted.</summary>
    public static IReadOnlyList<string> Folders()
    {
        string root = Fixtures.Folder("tokenizers");
        if (!Directory.Exists(root)) return [];
        return Directory.EnumerateDirectories(root).Where(d => File.Exists(Path.Combine(d, "cases.json")))
            .Select(Path.GetFileName).OfType<string>().OrderBy(n => n, StringComparer.Ordinal).ToList();
    }

    /// <summary>Full path of a fixture folder.</summary>
    public static string FolderPath(string folder) => Path.Combine(Fixtures.Folder("tokenizers"), folder);

    /// <summary>Name of a folder's drawn encode cases (optional; same fields as <c>cases.json</c>).</summary>
    public const string RandomCasesFile = "random_cases.json";

    /// <summary>Name of a folder's drawn id sequences with the reference decode (optional).</summary>
    public const string RandomDecodeFile = "random_decode.json";

    /// <summary>The cases of a folder: <c>cases.json</c>, or another file of the same schema such as <see cref="RandomCasesFile"/>.</summary>
    public static IReadOnlyList<TokenizerCase> Cases(string folder, string file = "cases.json")
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FolderPath(folder), file)));
        var list = new List<TokenizerCase>();
        foreach (JsonElement c in doc.RootElement.EnumerateArray())
        {
            string[]? tokens = c.TryGetProperty("tokens", out var t) ? t.EnumerateArray().Select(x => x.GetString()!).ToArray() : null;
            list.Add(new TokenizerCase(Str(c, "name")!, Str(c, "text")!, Ints(c, "ids"), Ints(c, "ids_with_special"), tokens,
                Str(c, "decoded"), Str(c, "decoded_with_special"), Str(c, "decoded_skip_special")));
        }
        return list;
    }

    /// <summary>The drawn id sequences of a folder's <see cref="RandomDecodeFile"/>; fields a set may omit are null.</summary>
    public static IReadOnlyList<TokenizerDecodeCase> DecodeCases(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FolderPath(folder), RandomDecodeFile)));
        var list = new List<TokenizerDecodeCase>();
        foreach (JsonElement c in doc.RootElement.EnumerateArray())
            list.Add(new TokenizerDecodeCase(Str(c, "name")!, Ints(c, "ids"), Str(c, "decoded_with_special"), Str(c, "decoded_skip_special")));
        return list;
    }

    /// <summary>A string field, or null when absent (or not a string).</summary>
    private static string? Str(JsonElement e, string name)
        => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int[] Ints(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToArray();

    /// <summary>xunit rows: (folder, case name) for every case of every folder.</summary>
    public static TheoryData<string, string> AllCases()
    {
        var data = new TheoryData<string, string>();
        foreach (string folder in Folders())
            foreach (TokenizerCase c in Cases(folder)) data.Add(folder, c.Name);
        return data;
    }

    /// <summary>xunit rows: one per folder.</summary>
    public static TheoryData<string> AllFolders()
    {
        var data = new TheoryData<string>();
        foreach (string folder in Folders()) data.Add(folder);
        return data;
    }

    /// <summary>The case of that name.</summary>
    public static TokenizerCase Case(string folder, string name) => Cases(folder).Single(c => c.Name == name);

    /// <summary>The folder's tokenizer, loaded once.</summary>
    public HfTokenizer Tokenizer(string folder) => _loaded.GetOrAdd(folder, f => HfTokenizer.Load(FolderPath(f)));

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (HfTokenizer t in _loaded.Values) t.Dispose();
    }
}
