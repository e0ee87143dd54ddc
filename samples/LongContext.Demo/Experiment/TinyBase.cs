using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Demo.Experiment;

/// <summary>
/// The shipped base model: a folder with <c>config.json</c>, <c>model.safetensors</c> (bf16) and <c>manifest.json</c>
/// (the pretraining settings, the tokenizer's fingerprint, the SHA-256 of the weights and the pretraining's
/// held-out perplexity). <see cref="Load"/> checks the hash and the settings before it uses the weights.
/// </summary>
public static class TinyBase
{
    /// <summary>The manifest's file name.</summary>
    public const string ManifestFile = "manifest.json";

    /// <summary>The tokenizer files <see cref="SaveModelFolder"/> copies beside the weights (those present).</summary>
    public static IReadOnlyList<string> TokenizerFiles { get; } =
        ["tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

    /// <summary>What <see cref="Save"/> writes in a base folder (<c>pretrain --output</c>).</summary>
    public static IReadOnlyList<string> FolderEntries { get; } = ["config.json", LlamaCheckpoint.WeightsFile, ManifestFile, .. TokenizerFiles];

    /// <summary>SHA-256 of a file, lower-case hex.</summary>
    /// <param name="path">The file.</param>
    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Saves the model in bf16 with its manifest, each file staged and renamed (no half-written folder).</summary>
    /// <param name="model">The pretrained model.</param>
    /// <param name="folder">Destination.</param>
    /// <param name="settings">How it was made.</param>
    /// <param name="tokenizerFingerprint">The tokenizer's fingerprint.</param>
    /// <param name="extra">Measurements to record (held-out loss, time).</param>
    public static void Save(LlamaForCausalLM model, string folder, PretrainSettings settings, string tokenizerFingerprint, JsonObject extra)
    {
        SaveModelFolder(model, folder, ScalarType.BFloat16);
        var manifest = new JsonObject
        {
            ["settings"] = settings.ToJson(),
            ["tokenizer_fingerprint"] = tokenizerFingerprint,
            ["model_safetensors_sha256"] = Sha256(Path.Combine(folder, "model.safetensors")),
            ["measured"] = extra,
        };
        AtomicFile.WriteAllText(Path.Combine(folder, ManifestFile), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>
    /// Writes <paramref name="model"/> as a complete HF folder: <c>config.json</c>, <c>model.safetensors</c> in
    /// <paramref name="dtype"/> and the tokenizer files of <paramref name="tokenizerFolder"/> (the demo's when null)
    /// beside them, so the extend, eval and generate commands read it.
    /// </summary>
    /// <param name="model">The model (not changed).</param>
    /// <param name="folder">Destination.</param>
    /// <param name="dtype">Dtype of the saved weights.</param>
    /// <param name="tokenizerFolder">Where the tokenizer files are (<see cref="TokenizerFiles"/>: those present).</param>
    public static void SaveModelFolder(LlamaForCausalLM model, string folder, ScalarType dtype, string? tokenizerFolder = null)
    {
        tokenizerFolder ??= Path.Combine(DemoInputs.DataFolder, "tokenizer");
        LongLora.SaveMerged(model, folder, dtype);
        foreach (string name in TokenizerFiles)
            if (File.Exists(Path.Combine(tokenizerFolder, name)))
                AtomicFile.WriteThroughPath(Path.Combine(folder, name), temp => File.Copy(Path.Combine(tokenizerFolder, name), temp));   // staged: never half-copied
    }

    /// <summary>Loads the base (fp32 on <paramref name="device"/>) after checking the manifest.</summary>
    /// <param name="folder">A folder written by <see cref="Save"/>.</param>
    /// <param name="settings">The settings the caller expects (context, sizes).</param>
    /// <param name="tokenizerFingerprint">The tokenizer in use.</param>
    /// <param name="device">Device.</param>
    /// <exception cref="InvalidDataException">The weights' hash, the tokenizer or the settings differ from the manifest.</exception>
    public static LlamaForCausalLM Load(string folder, PretrainSettings settings, string tokenizerFingerprint, Device device)
    {
        string manifestPath = Path.Combine(folder, ManifestFile);
        if (!File.Exists(manifestPath))
            throw new FileNotFoundException($"'{folder}' holds no {ManifestFile}; make the base with the pretrain command.", manifestPath);
        JsonObject manifest = ReadManifest(manifestPath);
        string expected = Text(manifest, "model_safetensors_sha256", manifestPath);
        string actual = Sha256(Path.Combine(folder, "model.safetensors"));
        if (actual != expected)
            throw new InvalidDataException($"'{folder}/model.safetensors' has SHA-256 {actual}; its manifest says {expected}. Re-make it with the pretrain command.");
        string fingerprint = Text(manifest, "tokenizer_fingerprint", manifestPath);
        if (fingerprint != tokenizerFingerprint)
            throw new InvalidDataException($"'{manifestPath}' was made with tokenizer {fingerprint}; the tokenizer in use is {tokenizerFingerprint}.");
        PretrainSettings saved = SettingsOf(manifest, manifestPath);
        if (saved.Context != settings.Context || saved.Hidden != settings.Hidden || saved.Layers != settings.Layers || saved.Heads != settings.Heads
            || saved.Intermediate != settings.Intermediate || saved.RopeTheta != settings.RopeTheta)
            throw new InvalidDataException($"'{manifestPath}' describes another base ({saved}) than the one asked for ({settings}).");
        return LlamaCheckpoint.Load(folder, ScalarType.Float32, device);
    }

    /// <summary>The settings the base in <paramref name="folder"/> was pretrained with (its manifest's), or null when the folder holds no manifest.</summary>
    /// <param name="folder">A base folder, or one that holds none yet.</param>
    /// <exception cref="InvalidDataException">The manifest has no settings or settings out of range.</exception>
    public static PretrainSettings? ReadSettings(string folder)
    {
        string manifestPath = Path.Combine(folder, ManifestFile);
        return File.Exists(manifestPath) ? SettingsOf(ReadManifest(manifestPath), manifestPath) : null;
    }

    /// <summary>The manifest's JSON object.</summary>
    /// <exception cref="InvalidDataException">The file is not a JSON object (a truncated or hand-edited manifest), naming it.</exception>
    private static JsonObject ReadManifest(string manifestPath)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(manifestPath)) as JsonObject
                   ?? throw new InvalidDataException($"'{manifestPath}' must be a JSON object; re-make the base with the pretrain command.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{manifestPath}' is not valid JSON ({e.Message}); re-make the base with the pretrain command.", e);
        }
    }

    /// <summary>A string field of the manifest.</summary>
    /// <exception cref="InvalidDataException">The field is missing or not a string.</exception>
    private static string Text(JsonObject manifest, string key, string manifestPath) =>
        manifest[key] is JsonValue v && v.TryGetValue(out string? text)
            ? text
            : throw new InvalidDataException($"'{manifestPath}' must have a string '{key}'; re-make the base with the pretrain command.");

    private static PretrainSettings SettingsOf(JsonObject manifest, string manifestPath)
    {
        try
        {
            return (manifest["settings"]?.Deserialize<PretrainSettings>()
                ?? throw new InvalidDataException($"'{manifestPath}' has no settings.")).Validated();
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or JsonException)   // a setting out of range, or of the wrong type
        {
            throw new InvalidDataException($"'{manifestPath}' settings: {e.Message}", e);
        }
    }

    /// <summary>The measurements recorded in the manifest, or null.</summary>
    /// <param name="folder">The base folder.</param>
    public static JsonObject? Measured(string folder)
    {
        string path = Path.Combine(folder, ManifestFile);
        return File.Exists(path) ? ReadManifest(path)["measured"] as JsonObject : null;
    }

    /// <summary>Invariant-culture number for the manifest.</summary>
    /// <param name="value">The value.</param>
    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
