using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.Llama;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Demo.Experiment;

/// <summary>Settings of the base model's pretraining (the <c>pretrain</c> command); all of them go into its manifest.</summary>
public sealed record PretrainSettings
{
    /// <summary>Seed of the initialization and the data order.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Pretraining context L.</summary>
    public int Context { get; init; } = 128;
    /// <summary>Optimizer updates.</summary>
    public int Steps { get; init; } = 2000;
    /// <summary>Rows per update.</summary>
    public int Batch { get; init; } = 16;
    /// <summary>Peak learning rate (cosine schedule, 5 % warmup).</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>AdamW weight decay (not on norms).</summary>
    public double WeightDecay { get; init; } = 0.1;
    /// <summary>Share of passkey rows in the data.</summary>
    public double PasskeyFraction { get; init; } = 0.25;
    /// <summary>Hidden size.</summary>
    public int Hidden { get; init; } = 128;
    /// <summary>Decoder layers.</summary>
    public int Layers { get; init; } = 3;
    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>MLP size.</summary>
    public int Intermediate { get; init; } = 384;
    /// <summary>RoPE base (small: with 32-dimensional heads, 8 of the 16 rotary pairs turn a full period within L = 128).</summary>
    public double RopeTheta { get; init; } = 500;

    /// <summary>The model's config for a vocabulary.</summary>
    /// <param name="vocabSize">Tokenizer vocabulary.</param>
    public LlamaConfig Config(int vocabSize) => new()
    {
        VocabSize = vocabSize,
        HiddenSize = Hidden,
        IntermediateSize = Intermediate,
        NumHiddenLayers = Layers,
        NumAttentionHeads = Heads,
        NumKeyValueHeads = Heads,
        HeadDim = Hidden / Heads,
        MaxPositionEmbeddings = Context,
        TieWordEmbeddings = true,
        Rope = new RopeParameters { Theta = RopeTheta },
    };

    /// <summary>The settings as JSON (the manifest's <c>settings</c>).</summary>
    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this)!.AsObject();
}

/// <summary>
/// The shipped base model: a folder with <c>config.json</c>, <c>model.safetensors</c> (bf16) and <c>manifest.json</c>
/// (the pretraining settings, the tokenizer's fingerprint, the SHA-256 of the weights and the pretraining's
/// held-out perplexity). <see cref="Load"/> checks the hash and the settings before it uses the weights.
/// </summary>
public static class TinyBase
{
    /// <summary>The manifest's file name.</summary>
    public const string ManifestFile = "manifest.json";

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
        LongLora.SaveMerged(model, folder, ScalarType.BFloat16);
        // The tokenizer beside the weights makes the base a complete HF folder (the extend/eval/generate commands read it).
        foreach (string name in new[] { "tokenizer.model", "tokenizer_config.json" })
            File.Copy(Path.Combine(DemoInputs.DataFolder, "tokenizer", name), Path.Combine(folder, name), overwrite: true);
        var manifest = new JsonObject
        {
            ["settings"] = settings.ToJson(),
            ["tokenizer_fingerprint"] = tokenizerFingerprint,
            ["model_safetensors_sha256"] = Sha256(Path.Combine(folder, "model.safetensors")),
            ["measured"] = extra,
        };
        Files.WriteText(Path.Combine(folder, ManifestFile), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
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
        JsonObject manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        string expected = manifest["model_safetensors_sha256"]!.GetValue<string>();
        string actual = Sha256(Path.Combine(folder, "model.safetensors"));
        if (actual != expected)
            throw new InvalidDataException($"'{folder}/model.safetensors' has SHA-256 {actual}; its manifest says {expected}. Re-make it with the pretrain command.");
        string fingerprint = manifest["tokenizer_fingerprint"]!.GetValue<string>();
        if (fingerprint != tokenizerFingerprint)
            throw new InvalidDataException($"'{manifestPath}' was made with tokenizer {fingerprint}; the tokenizer in use is {tokenizerFingerprint}.");
        var saved = manifest["settings"]!.Deserialize<PretrainSettings>()!;
        if (saved.Context != settings.Context || saved.Hidden != settings.Hidden || saved.Layers != settings.Layers || saved.Heads != settings.Heads
            || saved.Intermediate != settings.Intermediate || saved.RopeTheta != settings.RopeTheta)
            throw new InvalidDataException($"'{manifestPath}' describes another base ({saved}) than the one asked for ({settings}).");
        return LlamaCheckpoint.Load(folder, ScalarType.Float32, device);
    }

    /// <summary>The measurements recorded in the manifest, or null.</summary>
    /// <param name="folder">The base folder.</param>
    public static JsonObject? Measured(string folder)
    {
        string path = Path.Combine(folder, ManifestFile);
        return File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path))?["measured"]?.AsObject() : null;
    }

    /// <summary>Invariant-culture number for the manifest.</summary>
    /// <param name="value">The value.</param>
    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
