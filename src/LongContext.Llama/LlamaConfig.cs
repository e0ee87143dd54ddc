using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Llama.IO;
using LongContext.Rope;

namespace LongContext.Llama;

/// <summary>
/// The shape and numerics of a Llama-family decoder, as read from an HF <c>config.json</c>
/// (<see cref="FromJson(JsonObject, IEnumerable{string}?)"/>, <see cref="Load"/>) and written back
/// (<see cref="ToJson"/>). Validated as it is built: every field checks its value when set (the shape fields are
/// <see langword="required"/>), and the relations between fields (<see cref="NumAttentionHeads"/> a multiple of
/// <see cref="NumKeyValueHeads"/>, <see cref="Rope"/> fitting <see cref="HeadDim"/>, <see cref="PadTokenId"/> inside
/// the vocabulary) are checked as soon as both sides are set, at construction and in every <c>with</c>. An
/// <see cref="ArgumentException"/> names the field, the value and what was expected. Immutable; equality compares
/// every field (lists and <see cref="Source"/> by value).
/// </summary>
public sealed record LlamaConfig
{
    private readonly string _architecture = LlamaArchitectures.Llama;
    private readonly int _vocabSize, _hiddenSize, _intermediateSize, _numHiddenLayers, _numAttentionHeads, _numKeyValueHeads, _headDim, _maxPositionEmbeddings;
    private readonly double _rmsNormEps = 1e-6, _attentionDropout;
    private readonly int? _padTokenId;
    private readonly RopeParameters _rope = new();
    private readonly IReadOnlyDictionary<string, JsonElement>? _source;
    private readonly IReadOnlyList<string> _warnings = ValueList<string>.Empty;

    /// <summary>HF class name in <c>architectures</c>: <c>LlamaForCausalLM</c> or <c>MistralForCausalLM</c> (without sliding window).</summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="LlamaArchitectures.Supported"/>.</exception>
    public string Architecture
    {
        get => _architecture;
        init => _architecture = value is not null && LlamaArchitectures.Supported.Contains(value) ? value
            : throw new ArgumentException($"{nameof(Architecture)} '{value}' is not supported; expected one of {string.Join(", ", LlamaArchitectures.Supported)}.", nameof(Architecture));
    }

    /// <summary>Token vocabulary size (rows of <c>embed_tokens</c>), positive.</summary>
    public required int VocabSize
    {
        get => _vocabSize;
        init { _vocabSize = Guard.Positive(value, nameof(VocabSize)); CheckPadToken(); }
    }

    /// <summary>Model width, positive.</summary>
    public required int HiddenSize { get => _hiddenSize; init => _hiddenSize = Guard.Positive(value, nameof(HiddenSize)); }

    /// <summary>Width of the SwiGLU MLP's inner layer, positive.</summary>
    public required int IntermediateSize { get => _intermediateSize; init => _intermediateSize = Guard.Positive(value, nameof(IntermediateSize)); }

    /// <summary>Number of decoder layers, positive.</summary>
    public required int NumHiddenLayers { get => _numHiddenLayers; init => _numHiddenLayers = Guard.Positive(value, nameof(NumHiddenLayers)); }

    /// <summary>Query heads, positive and a multiple of <see cref="NumKeyValueHeads"/>.</summary>
    public required int NumAttentionHeads
    {
        get => _numAttentionHeads;
        init { _numAttentionHeads = Guard.Positive(value, nameof(NumAttentionHeads)); CheckHeads(); }
    }

    /// <summary>Key/value heads, positive (grouped-query attention when fewer than <see cref="NumAttentionHeads"/>). HF's default is <c>num_attention_heads</c>.</summary>
    public required int NumKeyValueHeads
    {
        get => _numKeyValueHeads;
        init { _numKeyValueHeads = Guard.Positive(value, nameof(NumKeyValueHeads)); CheckHeads(); }
    }

    /// <summary>Per-head width, positive, with an even rotated part; HF's default is <c>hidden_size / num_attention_heads</c>.</summary>
    public required int HeadDim
    {
        get => _headDim;
        init { _headDim = Guard.Positive(value, nameof(HeadDim)); CheckRope(); }
    }

    /// <summary>Epsilon inside RMSNorm, positive (1e-6 unless set, HF's default).</summary>
    public double RmsNormEps { get => _rmsNormEps; init => _rmsNormEps = Guard.Positive(value, nameof(RmsNormEps)); }

    /// <summary>Context length the position embedding is configured for (after any scaling), positive. HF's default is 2048 (Llama) or 131072 (Mistral).</summary>
    public required int MaxPositionEmbeddings
    {
        get => _maxPositionEmbeddings;
        init { _maxPositionEmbeddings = Guard.Positive(value, nameof(MaxPositionEmbeddings)); CheckRope(); }
    }

    /// <summary>Whether <c>lm_head</c> shares the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Bias on the q, k, v and o projections (Llama's <c>attention_bias</c>; Mistral has none).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Bias on the gate, up and down projections (Llama's <c>mlp_bias</c>; Mistral has none).</summary>
    public bool MlpBias { get; init; }

    /// <summary>Dropout on attention probabilities in training (HF <c>attention_dropout</c>), in [0, 1).</summary>
    public double AttentionDropout
    {
        get => _attentionDropout;
        init => _attentionDropout = value >= 0 && value < 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(AttentionDropout), value, $"{nameof(AttentionDropout)} must be in [0, 1); got {value}.");
    }

    /// <summary>
    /// HF's <c>pad_token_id</c>, or null. The token embedding takes it as <c>padding_idx</c>, as HF's model does: the
    /// pad row gets no gradient when embeddings are trained. Must lie in [-VocabSize, VocabSize) (a negative id counts
    /// from the end, as <c>torch.nn.Embedding</c> reads it).
    /// </summary>
    public int? PadTokenId
    {
        get => _padTokenId;
        init { _padTokenId = value; CheckPadToken(); }
    }

    /// <summary>The embedding row <see cref="PadTokenId"/> names (a negative id counted from the end), or null: HF's <c>padding_idx</c>.</summary>
    public long? PaddingIndex => PadTokenId is int pad ? (pad < 0 ? pad + (long)VocabSize : pad) : null;

    /// <summary>Rotary embedding parameters (type, theta, scaling factor, ...), checked against <see cref="HeadDim"/> and <see cref="MaxPositionEmbeddings"/>.</summary>
    public RopeParameters Rope
    {
        get => _rope;
        init { _rope = value ?? throw new ArgumentNullException(nameof(Rope)); CheckRope(); }
    }

    /// <summary>
    /// The fields of the <c>config.json</c> this was read from that this record does not model (token ids, dtype,
    /// <c>transformers_version</c>, fields HF ignores, ...), kept immutable and written back by <see cref="ToJson"/>;
    /// null when built in code. Assigning copies the given fields.
    /// </summary>
    public IReadOnlyDictionary<string, JsonElement>? Source { get => _source; init => _source = JsonFieldMap.CopyOf(value); }

    /// <summary>
    /// One line per field of the read <c>config.json</c> that HF ignores or reads unusually (unknown fields, rope keys
    /// the rope type does not use, zeros read as unset, ...), naming the file and the field; empty when built in code
    /// or when there is none. Programs should show them (the demo prints them).
    /// </summary>
    public IReadOnlyList<string> Warnings { get => _warnings; init => _warnings = ValueList<string>.CopyOf(value) ?? throw new ArgumentNullException(nameof(Warnings)); }

    /// <summary>
    /// Reads an HF <c>config.json</c> object. What changes the math and is not implemented (another architecture, an
    /// activation other than SiLU, a sliding window, a quantization config, invalid rope settings) is an error naming
    /// the field; fields HF ignores are accepted, kept in <see cref="Source"/> and reported in <see cref="Warnings"/>;
    /// bookkeeping fields HF knows (<c>torch_dtype</c>, token ids, ...) are kept without a warning. Missing optional
    /// fields take the defaults of HF's <c>LlamaConfig</c> / <c>MistralConfig</c>.
    /// </summary>
    /// <param name="json">The parsed <c>config.json</c>.</param>
    /// <param name="acceptFields">Field names the caller vouches for: kept without a warning.</param>
    /// <exception cref="InvalidDataException">The config names an unsupported architecture or option, lacks a
    /// required field, or a field has the wrong type or value; the message names it.</exception>
    public static LlamaConfig FromJson(JsonObject json, IEnumerable<string>? acceptFields = null)
        => HfLlamaConfig.Read(json, "config.json", acceptFields);

    /// <summary>Reads <c>config.json</c> from a checkpoint folder (or the file itself); see <see cref="FromJson"/>.</summary>
    /// <param name="path">A checkpoint folder holding <c>config.json</c>, or a path to such a file.</param>
    /// <param name="acceptFields">Field names the caller vouches for: kept without a warning.</param>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid config; the message names the file and the field.</exception>
    public static LlamaConfig Load(string path, IEnumerable<string>? acceptFields = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"config file '{file}' does not exist.", file);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(file)); }
        catch (JsonException e) { throw new InvalidDataException($"'{file}' is not valid JSON: {e.Message}", e); }
        if (node is not JsonObject obj) throw new InvalidDataException($"'{file}' must hold a JSON object.");
        return HfLlamaConfig.Read(obj, file, acceptFields);
    }

    /// <summary>This config as a new HF <c>config.json</c> object (the fields of <see cref="Source"/> included); the caller owns it.</summary>
    public JsonObject ToJson() => HfLlamaConfig.Write(this);

    /// <summary>This config as <c>config.json</c> text (indented, ending in a newline), ready to be written.</summary>
    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    /// <summary>Writes <c>config.json</c> (<see cref="ToJsonString"/>) into a folder (created if absent).</summary>
    /// <param name="folder">Destination folder.</param>
    public void Save(string folder)
    {
        using var staged = Stage(folder);
        staged.Commit();
    }

    /// <summary><see cref="Save"/>'s file written beside <c>config.json</c>, not yet renamed over it (the caller commits and disposes it).</summary>
    internal LongContext.IO.StagedFile Stage(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        LongContext.IO.AtomicFile.CreateFolder(folder);
        return LongContext.IO.AtomicFile.StageText(Path.Combine(folder, "config.json"), ToJsonString());
    }

    private void CheckHeads()
    {
        if (_numAttentionHeads > 0 && _numKeyValueHeads > 0 && _numAttentionHeads % _numKeyValueHeads != 0)
            throw new ArgumentException(
                $"{nameof(NumAttentionHeads)} ({_numAttentionHeads}) must be a multiple of {nameof(NumKeyValueHeads)} ({_numKeyValueHeads}).", nameof(NumKeyValueHeads));
    }

    private void CheckRope()
    {
        if (_rope is null || _headDim <= 0 || _maxPositionEmbeddings <= 0) return;
        try
        {
            _rope.Validate(_headDim, _maxPositionEmbeddings);
        }
        catch (ArgumentException e)
        {
            string param = e.ParamName == "headDim" ? nameof(HeadDim) : $"{nameof(Rope)}.{e.ParamName}";
            throw new ArgumentException($"{nameof(Rope)} does not fit {nameof(HeadDim)} {_headDim}: {e.Message}", param, e);
        }
    }

    private void CheckPadToken()
    {
        if (_padTokenId is int pad && _vocabSize > 0 && (pad < -_vocabSize || pad >= _vocabSize))
            throw new ArgumentOutOfRangeException(nameof(PadTokenId), pad,
                $"{nameof(PadTokenId)} must be in [-{_vocabSize}, {_vocabSize}) (a row of the {_vocabSize}-token embedding, as torch.nn.Embedding's padding_idx); got {pad}.");
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
