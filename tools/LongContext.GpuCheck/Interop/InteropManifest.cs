using System.Text.Json;
using System.Text.Json.Serialization;
using LongContext.IO;

namespace LongContext.GpuCheck.Interop;

/// <summary>
/// <c>manifest.json</c> of an interop folder, written by <c>interop-export</c> (read by scripts/gpu/interop.py) and by
/// interop.py's <c>export-peft</c> (read by <c>interop-import</c>). Paths are relative to the folder.
/// </summary>
internal sealed record InteropManifest
{
    /// <summary>Who wrote it: <c>dotnet</c> or <c>peft</c>.</summary>
    public string Writer { get; init; } = "";

    /// <summary>Safetensors file holding <c>input_ids</c> (B, N) int64.</summary>
    public string Inputs { get; init; } = "";

    /// <summary>The cases.</summary>
    public List<InteropVariant> Variants { get; init; } = [];

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads <c>folder/manifest.json</c>.</summary>
    /// <exception cref="InvalidDataException">The file is missing or not a manifest.</exception>
    public static InteropManifest Read(string folder)
    {
        string path = Path.Combine(folder, "manifest.json");
        if (!File.Exists(path)) throw new InvalidDataException($"'{path}' does not exist; run the writer first.");
        return JsonSerializer.Deserialize<InteropManifest>(File.ReadAllText(path), Json)
            ?? throw new InvalidDataException($"'{path}' is not an interop manifest.");
    }

    /// <summary>Writes <c>folder/manifest.json</c>.</summary>
    public void Write(string folder) => AtomicFile.WriteAllText(Path.Combine(folder, "manifest.json"), JsonSerializer.Serialize(this, Json));
}

/// <summary>One interop case.</summary>
internal sealed record InteropVariant
{
    /// <summary>Case name.</summary>
    public string Name { get; init; } = "";

    /// <summary><c>dense</c> (LoRA over the float base) or <c>nf4</c> (QLoRA: the base quantized NF4, block 64, double quant, float32 compute).</summary>
    public string BaseKind { get; init; } = "dense";

    /// <summary>HF checkpoint folder of the float base the reader loads (for nf4: the dequantized NF4 weights).</summary>
    public string Base { get; init; } = "";

    /// <summary>The peft adapter folder.</summary>
    public string Adapter { get; init; } = "";

    /// <summary>A merged HF checkpoint folder (LongLora.SaveMerged), or null.</summary>
    public string? Merged { get; init; }

    /// <summary>Safetensors file with <c>logits</c> (adapter on) and optionally <c>logits_merged</c>, float32.</summary>
    public string Expected { get; init; } = "";

    /// <summary>What the case exercises.</summary>
    public string Description { get; init; } = "";
}
