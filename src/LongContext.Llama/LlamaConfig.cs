using System.Text.Json.Nodes;
using LongContext.Llama.IO;
using LongContext.Rope;

namespace LongContext.Llama;

/// <summary>
/// The shape and numerics of a Llama-family decoder, as read from an HF <c>config.json</c>
/// (<see cref="FromJson(JsonObject, IEnumerable{string}?)"/>) and written back (<see cref="ToJson"/>).
/// Validated on construction through <see cref="Validate"/>.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>HF class name in <c>architectures</c>: <c>LlamaForCausalLM</c> or <c>MistralForCausalLM</c> (without sliding window).</summary>
    public string Architecture { get; init; } = LlamaArchitectures.Llama;
    /// <summary>Token vocabulary size (rows of <c>embed_tokens</c>).</summary>
    public int VocabSize { get; init; }
    /// <summary>Model width.</summary>
    public int HiddenSize { get; init; }
    /// <summary>Width of the SwiGLU MLP's inner layer.</summary>
    public int IntermediateSize { get; init; }
    /// <summary>Number of decoder layers.</summary>
    public int NumHiddenLayers { get; init; }
    /// <summary>Query heads.</summary>
    public int NumAttentionHeads { get; init; }
    /// <summary>Key/value heads (grouped-query attention when fewer than <see cref="NumAttentionHeads"/>).</summary>
    public int NumKeyValueHeads { get; init; }
    /// <summary>Per-head width; HF's default is <c>hidden_size / num_attention_heads</c>.</summary>
    public int HeadDim { get; init; }
    /// <summary>Epsilon inside RMSNorm.</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>Context length the position embedding is configured for (after any scaling).</summary>
    public int MaxPositionEmbeddings { get; init; }
    /// <summary>Whether <c>lm_head</c> shares the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on the q, k, v and o projections.</summary>
    public bool AttentionBias { get; init; }
    /// <summary>Bias on the gate, up and down projections.</summary>
    public bool MlpBias { get; init; }
    /// <summary>Dropout on attention probabilities in training (HF <c>attention_dropout</c>).</summary>
    public double AttentionDropout { get; init; }
    /// <summary>Rotary embedding parameters (type, theta, scaling factor, ...).</summary>
    public RopeParameters Rope { get; init; } = new();
    /// <summary>
    /// The <c>config.json</c> this was read from (harmless fields such as token ids are kept and written back by
    /// <see cref="ToJson"/>); null when built in code.
    /// </summary>
    public JsonObject? Source { get; init; }

    /// <summary>Checks every field; throws <see cref="ArgumentException"/> naming the field, value and expectation.</summary>
    /// <returns>This config.</returns>
    public LlamaConfig Validate()
    {
        if (!LlamaArchitectures.Supported.Contains(Architecture))
            throw new ArgumentException($"{nameof(Architecture)} '{Architecture}' is not supported; expected one of {string.Join(", ", LlamaArchitectures.Supported)}.", nameof(Architecture));
        Guard.Positive(VocabSize);
        Guard.Positive(HiddenSize);
        Guard.Positive(IntermediateSize);
        Guard.Positive(NumHiddenLayers);
        Guard.Positive(NumAttentionHeads);
        Guard.Positive(NumKeyValueHeads);
        Guard.Positive(HeadDim);
        Guard.Positive(MaxPositionEmbeddings);
        Guard.Positive(RmsNormEps);
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"{nameof(HeadDim)} must be even for rotary embeddings; got {HeadDim}.", nameof(HeadDim));
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new ArgumentException($"{nameof(NumAttentionHeads)} ({NumAttentionHeads}) must be a multiple of {nameof(NumKeyValueHeads)} ({NumKeyValueHeads}).", nameof(NumKeyValueHeads));
        if (!(AttentionDropout >= 0 && AttentionDropout < 1))
            throw new ArgumentOutOfRangeException(nameof(AttentionDropout), AttentionDropout, $"{nameof(AttentionDropout)} must be in [0, 1); got {AttentionDropout}.");
        ArgumentNullException.ThrowIfNull(Rope, nameof(Rope));
        return this;
    }

    /// <summary>
    /// Reads an HF <c>config.json</c> object. Fields that change the math and are not implemented (another
    /// architecture, an activation other than SiLU, sliding windows, quantization configs, unknown fields) are
    /// errors; bookkeeping fields (<c>torch_dtype</c>, token ids, ...) are accepted and kept in <see cref="Source"/>.
    /// </summary>
    /// <param name="json">The parsed <c>config.json</c>.</param>
    /// <param name="acceptFields">Extra field names the caller vouches do not change the math.</param>
    /// <exception cref="InvalidDataException">The config names an unsupported architecture or option, or a field
    /// has the wrong type.</exception>
    public static LlamaConfig FromJson(JsonObject json, IEnumerable<string>? acceptFields = null)
        => HfLlamaConfig.Read(json, acceptFields);

    /// <summary>Reads <c>config.json</c> from a checkpoint folder (or the file itself).</summary>
    /// <param name="path">A checkpoint folder holding <c>config.json</c>, or a path to such a file.</param>
    /// <param name="acceptFields">Extra field names the caller vouches do not change the math.</param>
    public static LlamaConfig Load(string path, IEnumerable<string>? acceptFields = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"config file '{file}' does not exist.", file);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(file)); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"'{file}' is not valid JSON: {e.Message}", e); }
        if (node is not JsonObject obj) throw new InvalidDataException($"'{file}' must hold a JSON object.");
        try { return FromJson(obj, acceptFields); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{file}: {e.Message}", e); }
    }

    /// <summary>Writes this config as an HF <c>config.json</c> object (fields of <see cref="Source"/> kept).</summary>
    public JsonObject ToJson() => HfLlamaConfig.Write(this);

    /// <summary>Writes <c>config.json</c> into a folder (created if absent).</summary>
    /// <param name="folder">Destination folder.</param>
    public void Save(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        Directory.CreateDirectory(folder);
        LongContext.IO.AtomicFile.WriteAllText(Path.Combine(folder, "config.json"),
            ToJson().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

}

/// <summary>HF architecture names this library implements.</summary>
public static class LlamaArchitectures
{
    /// <summary><c>LlamaForCausalLM</c>.</summary>
    public const string Llama = "LlamaForCausalLM";
    /// <summary><c>MistralForCausalLM</c>: the Llama math when <c>sliding_window</c> is null.</summary>
    public const string Mistral = "MistralForCausalLM";
    /// <summary>Every supported name.</summary>
    public static IReadOnlyList<string> Supported { get; } = [Llama, Mistral];
}
