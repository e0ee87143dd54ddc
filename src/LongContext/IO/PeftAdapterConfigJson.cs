using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LongContext.IO;

/// <summary>
/// peft's <c>adapter_config.json</c> for LoRA (as peft 0.21 writes it). Fields that change the math are typed;
/// everything else is kept in <see cref="Extra"/> so that reading refuses options this library cannot honour.
/// </summary>
public sealed class PeftAdapterConfigJson
{
    /// <summary>File name peft uses.</summary>
    public const string FileName = "adapter_config.json";

    /// <summary><c>peft_type</c>; "LORA" for LoRA.</summary>
    [JsonPropertyName("peft_type")] public string? PeftType { get; set; } = "LORA";
    /// <summary><c>base_model_name_or_path</c>.</summary>
    [JsonPropertyName("base_model_name_or_path")] public string? BaseModelNameOrPath { get; set; }
    /// <summary><c>task_type</c> (e.g. CAUSAL_LM) or null.</summary>
    [JsonPropertyName("task_type")] public string? TaskType { get; set; }
    /// <summary><c>inference_mode</c>; peft writes true on save.</summary>
    [JsonPropertyName("inference_mode")] public bool InferenceMode { get; set; } = true;
    /// <summary><c>r</c>.</summary>
    [JsonPropertyName("r")] public int R { get; set; } = 8;
    /// <summary><c>lora_alpha</c>.</summary>
    [JsonPropertyName("lora_alpha")] public double LoraAlpha { get; set; } = 8;
    /// <summary><c>lora_dropout</c>.</summary>
    [JsonPropertyName("lora_dropout")] public double LoraDropout { get; set; }
    /// <summary><c>target_modules</c>: a list of names, a regex string, or "all-linear".</summary>
    [JsonPropertyName("target_modules")] public JsonNode? TargetModules { get; set; }
    /// <summary><c>use_rslora</c>.</summary>
    [JsonPropertyName("use_rslora")] public bool UseRsLora { get; set; }
    /// <summary><c>bias</c>: "none", "all" or "lora_only".</summary>
    [JsonPropertyName("bias")] public string Bias { get; set; } = "none";
    /// <summary><c>modules_to_save</c> or null.</summary>
    [JsonPropertyName("modules_to_save")] public List<string>? ModulesToSave { get; set; }
    /// <summary><c>init_lora_weights</c>: true, false, or a method name such as "gaussian".</summary>
    [JsonPropertyName("init_lora_weights")] public JsonNode? InitLoraWeights { get; set; } = JsonValue.Create(true);
    /// <summary><c>fan_in_fan_out</c> (weights stored transposed, GPT-2 Conv1D).</summary>
    [JsonPropertyName("fan_in_fan_out")] public bool FanInFanOut { get; set; }
    /// <summary><c>use_dora</c>.</summary>
    [JsonPropertyName("use_dora")] public bool UseDora { get; set; }
    /// <summary><c>lora_bias</c> (a bias on B).</summary>
    [JsonPropertyName("lora_bias")] public bool LoraBias { get; set; }
    /// <summary><c>rank_pattern</c>: per-module ranks.</summary>
    [JsonPropertyName("rank_pattern")] public Dictionary<string, JsonNode?>? RankPattern { get; set; } = [];
    /// <summary><c>alpha_pattern</c>: per-module alphas.</summary>
    [JsonPropertyName("alpha_pattern")] public Dictionary<string, JsonNode?>? AlphaPattern { get; set; } = [];
    /// <summary><c>layers_to_transform</c>.</summary>
    [JsonPropertyName("layers_to_transform")] public JsonNode? LayersToTransform { get; set; }
    /// <summary><c>layers_pattern</c>.</summary>
    [JsonPropertyName("layers_pattern")] public JsonNode? LayersPattern { get; set; }
    /// <summary><c>exclude_modules</c>.</summary>
    [JsonPropertyName("exclude_modules")] public JsonNode? ExcludeModules { get; set; }
    /// <summary><c>layer_replication</c>.</summary>
    [JsonPropertyName("layer_replication")] public JsonNode? LayerReplication { get; set; }
    /// <summary><c>use_qalora</c>.</summary>
    [JsonPropertyName("use_qalora")] public bool UseQalora { get; set; }
    /// <summary><c>target_parameters</c> (LoRA on raw parameters).</summary>
    [JsonPropertyName("target_parameters")] public JsonNode? TargetParameters { get; set; }
    /// <summary><c>trainable_token_indices</c>.</summary>
    [JsonPropertyName("trainable_token_indices")] public JsonNode? TrainableTokenIndices { get; set; }
    /// <summary><c>revision</c>.</summary>
    [JsonPropertyName("revision")] public string? Revision { get; set; }
    /// <summary>Every other field, kept verbatim (e.g. <c>peft_version</c>, <c>auto_mapping</c>, <c>megatron_core</c>).</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>
    /// peft 0.21 fields that this library writes with their default (math-neutral) values, so that a peft reading
    /// the file sees the same set of keys peft itself writes.
    /// </summary>
    internal static readonly (string Key, object? Value)[] NeutralDefaults =
    [
        ("alora_invocation_tokens", null), ("arrow_config", null), ("auto_mapping", null), ("corda_config", null),
        ("ensure_weight_tying", false), ("eva_config", null), ("kasa_config", null), ("loftq_config", new Dictionary<string, object>()),
        ("lora_ga_config", null), ("megatron_config", null), ("megatron_core", "megatron.core"), ("monteclora_config", null),
        ("qalora_group_size", 16), ("use_bdlora", null), ("velora_config", null),
    ];

    private static readonly JsonSerializerOptions WriteOptions = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    /// <summary>Reads a config file.</summary>
    /// <param name="path">Path of <c>adapter_config.json</c>.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not valid JSON of this shape.</exception>
    public static PeftAdapterConfigJson Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"peft adapter config '{path}' does not exist.", path);
        try
        {
            var config = JsonSerializer.Deserialize<PeftAdapterConfigJson>(File.ReadAllText(path))
                ?? throw new InvalidDataException($"'{path}' holds JSON null, not a peft adapter config.");
            config.CheckShapes(path);
            return config;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid peft adapter config: {e.Message}", e);
        }
    }

    /// <summary>The fields typed as JSON nodes hold one of the shapes peft writes.</summary>
    private void CheckShapes(string path)
    {
        bool targetsOk = TargetModules switch
        {
            null => true,
            JsonValue v => v.GetValueKind() == JsonValueKind.String,
            JsonArray list => list.All(n => n is JsonValue e && e.GetValueKind() == JsonValueKind.String),
            _ => false,
        };
        if (!targetsOk)
            throw new InvalidDataException($"'{path}': target_modules must be a list of module names, a regex string or \"all-linear\"; got {TargetModules!.ToJsonString()}.");
        if (InitLoraWeights is not null && InitLoraWeights.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.String))
            throw new InvalidDataException($"'{path}': init_lora_weights must be true, false or a method name; got {InitLoraWeights.ToJsonString()}.");
    }

    /// <summary>Writes the config with sorted keys, as peft's <c>save_pretrained</c> does.</summary>
    /// <param name="path">Destination file; replaced atomically if present (its folder is created if absent).</param>
    public void Write(string path)
    {
        using StagedFile staged = Stage(path);
        staged.Commit();
    }

    /// <summary>Writes the config beside <paramref name="path"/> without renaming it yet (see <see cref="AtomicFile.Stage"/>).</summary>
    internal StagedFile Stage(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var node = JsonSerializer.SerializeToNode(this, WriteOptions)!.AsObject();
        foreach (var (key, value) in NeutralDefaults)
            if (!node.ContainsKey(key)) node[key] = JsonSerializer.SerializeToNode(value);
        var sorted = new JsonObject();
        foreach (var kv in node.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            sorted[kv.Key] = kv.Value?.DeepClone();
        return AtomicFile.StageText(path, sorted.ToJsonString(WriteOptions));
    }
}
