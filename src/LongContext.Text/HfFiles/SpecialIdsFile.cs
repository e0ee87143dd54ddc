using System.Text.Json;

namespace LongContext.Text.HfFiles;

/// <summary>The special ids a <c>generation_config.json</c> or <c>config.json</c> gives (each optional).</summary>
internal sealed record SpecialIdsFile(int? BosId, IReadOnlyList<int>? EosIds, int? PadId)
{
    public static SpecialIdsFile? ReadIfPresent(string path)
    {
        if (!File.Exists(path)) return null;
        using JsonDocument doc = JsonFields.Parse(path);
        JsonElement root = JsonFields.RootObject(doc, path);
        return new SpecialIdsFile(
            JsonFields.Int(root, "bos_token_id", path),
            JsonFields.IntOrIntList(root, "eos_token_id", path),
            JsonFields.Int(root, "pad_token_id", path));
    }
}
