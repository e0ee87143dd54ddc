using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Rope;

namespace LongContext.Llama.IO;

/// <summary>
/// The HF <c>config.json</c> shape of a Llama-family model: the only place its snake_case names live. Fields are read
/// through one <see cref="JsonFieldReader"/> (shared with <see cref="HfRopeConfig"/>, which receives the head
/// dimension and window from here), with the defaults of HF's <c>LlamaConfig</c> and <c>MistralConfig</c>.
/// </summary>
internal static class HfLlamaConfig
{
    /// <summary>What differs between the two HF config classes read here.</summary>
    /// <param name="ModelType">HF's <c>model_type</c>.</param>
    /// <param name="MaxPositionEmbeddings">The class's default <c>max_position_embeddings</c>.</param>
    /// <param name="NumKeyValueHeads">The class's default <c>num_key_value_heads</c> when the key is absent (null: <c>num_attention_heads</c>).</param>
    /// <param name="SlidingWindow">The class's default <c>sliding_window</c> when the key is absent (null: the class has no sliding window).</param>
    /// <param name="HasBiasFields">Whether the class reads <c>attention_bias</c> and <c>mlp_bias</c> (Mistral's layers have no biases).</param>
    private sealed record ArchitectureDefaults(string ModelType, int MaxPositionEmbeddings, int? NumKeyValueHeads, int? SlidingWindow, bool HasBiasFields);

    private static readonly Dictionary<string, ArchitectureDefaults> Defaults = new(StringComparer.Ordinal)
    {
        [LlamaArchitectures.Llama] = new("llama", MaxPositionEmbeddings: 2048, NumKeyValueHeads: null, SlidingWindow: null, HasBiasFields: true),
        [LlamaArchitectures.Mistral] = new("mistral", MaxPositionEmbeddings: 4096 * 32, NumKeyValueHeads: 8, SlidingWindow: 4096, HasBiasFields: false),
    };

    /// <summary>Fields HF's config classes know that do not change the forward pass: kept and written back, without a warning.</summary>
    private static readonly HashSet<string> Bookkeeping = new(StringComparer.Ordinal)
    {
        "torch_dtype", "dtype", "bos_token_id", "eos_token_id", "transformers_version", "use_cache",
        "initializer_range", "_name_or_path", "output_attentions", "output_hidden_states", "return_dict",
        "tokenizer_class", "_attn_implementation", "_attn_implementation_autoset", "id2label", "label2id",
        "torchscript", "is_encoder_decoder", "problem_type", "finetuning_task", "prefix", "task_specific_params",
        "chunk_size_feed_forward", "max_length", "min_length", "do_sample", "temperature", "top_p", "top_k",
        "num_beams", "repetition_penalty", "use_return_dict", "tie_encoder_decoder", "cross_attention_hidden_size",
        "add_cross_attention", "is_decoder", "early_stopping", "bad_words_ids", "sep_token_id", "decoder_start_token_id",
        // HF splits matmuls into pretraining_tp slices: the same math.
        "pretraining_tp",
    };

    /// <summary>Architectures that look related but compute something else, with the reason.</summary>
    private static readonly Dictionary<string, string> KnownIncompatible = new(StringComparer.Ordinal)
    {
        ["Qwen2ForCausalLM"] = "Qwen2 puts biases on q/k/v but not on o_proj and may use sliding windows",
        ["Qwen3ForCausalLM"] = "Qwen3 normalizes q and k per head (q_norm/k_norm)",
        ["GemmaForCausalLM"] = "Gemma scales embeddings, uses GELU and (1 + weight) RMSNorm",
        ["Gemma2ForCausalLM"] = "Gemma 2 adds soft-capping, extra norms and sliding windows",
        ["MixtralForCausalLM"] = "Mixtral is a mixture of experts",
        ["PhiForCausalLM"] = "Phi uses LayerNorm, partial rotary and parallel blocks",
        ["Phi3ForCausalLM"] = "Phi-3 fuses qkv and gate/up projections",
    };

    /// <summary>Reads a config; <paramref name="file"/> names it in messages and warnings.</summary>
    public static LlamaConfig Read(JsonObject json, string file, IEnumerable<string>? acceptFields)
    {
        ArgumentNullException.ThrowIfNull(json);
        var config = new JsonFieldReader(json, file);
        var warnings = new List<string>();
        var accepted = new HashSet<string>(acceptFields ?? [], StringComparer.Ordinal);

        string architecture = ReadArchitecture(config);
        ArchitectureDefaults defaults = Defaults[architecture];
        string hiddenAct = config.String("hidden_act") ?? "silu";
        if (hiddenAct != "silu")
            throw config.Error($"hidden_act '{hiddenAct}' is not supported; expected 'silu' (SwiGLU MLP).");
        CheckSlidingWindow(config, defaults);
        if (config.Contains("quantization_config"))
            throw config.Error("quantization_config is not supported: this is a quantized checkpoint (HF loads it through its quantizer); load a full-precision checkpoint and quantize it with ModelQuantizer.");

        int hidden = Required(config, "hidden_size");
        int heads = Required(config, "num_attention_heads");
        if (heads <= 0) throw config.Invalid("num_attention_heads", "a positive integer");
        int headDim = config.Integer("head_dim") ?? hidden / heads;
        int maxPositions = config.Integer("max_position_embeddings") ?? defaults.MaxPositionEmbeddings;
        // HF: an absent key takes the class default, an explicit null means num_attention_heads.
        int kvHeads = config.Integer("num_key_value_heads") ?? (config.Contains("num_key_value_heads") ? heads : defaults.NumKeyValueHeads ?? heads);
        RopeParameters rope = HfRopeConfig.Read(config, headDim, maxPositions, warnings);

        LlamaConfig result;
        try
        {
            result = new LlamaConfig
            {
                Architecture = architecture,
                VocabSize = Required(config, "vocab_size"),
                HiddenSize = hidden,
                IntermediateSize = Required(config, "intermediate_size"),
                NumHiddenLayers = Required(config, "num_hidden_layers"),
                NumAttentionHeads = heads,
                NumKeyValueHeads = kvHeads,
                HeadDim = headDim,
                RmsNormEps = config.Number("rms_norm_eps") ?? 1e-6,
                MaxPositionEmbeddings = maxPositions,
                TieWordEmbeddings = config.Boolean("tie_word_embeddings") ?? false,
                AttentionBias = defaults.HasBiasFields && (config.Boolean("attention_bias") ?? false),
                MlpBias = defaults.HasBiasFields && (config.Boolean("mlp_bias") ?? false),
                AttentionDropout = config.Number("attention_dropout") ?? 0,
                PadTokenId = config.Integer("pad_token_id"),
                Rope = rope,
            };
        }
        catch (ArgumentException e)
        {
            throw config.Error($"config is invalid: {e.Message}", e);
        }

        IReadOnlyList<string> unread = config.Unread;
        foreach (string key in unread)
        {
            if (Bookkeeping.Contains(key) || accepted.Contains(key)) continue;
            warnings.Add(config.Warning($"'{key}' = {Shorten(config.Show(key))} is not a field of HF's {architecture} config; HF ignores it, and so does this library (it is kept and written back)."));
        }
        return result with { Source = JsonFieldMap.Of(json, unread), Warnings = warnings };
    }

    /// <summary>The config as a new <c>config.json</c> object: the modeled fields, then the kept ones, then the rope parameters.</summary>
    public static JsonObject Write(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArchitectureDefaults defaults = Defaults[config.Architecture];
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(config.Architecture),
            ["model_type"] = defaults.ModelType,
            ["vocab_size"] = config.VocabSize,
            ["hidden_size"] = config.HiddenSize,
            ["intermediate_size"] = config.IntermediateSize,
            ["num_hidden_layers"] = config.NumHiddenLayers,
            ["num_attention_heads"] = config.NumAttentionHeads,
            ["num_key_value_heads"] = config.NumKeyValueHeads,
            ["head_dim"] = config.HeadDim,
            ["rms_norm_eps"] = config.RmsNormEps,
            ["max_position_embeddings"] = config.MaxPositionEmbeddings,
            ["tie_word_embeddings"] = config.TieWordEmbeddings,
            ["attention_dropout"] = config.AttentionDropout,
            ["hidden_act"] = "silu",
            ["pad_token_id"] = config.PadTokenId,
        };
        if (defaults.HasBiasFields)
        {
            json["attention_bias"] = config.AttentionBias;
            json["mlp_bias"] = config.MlpBias;
        }
        // MistralConfig reads an absent sliding_window as 4096: write the full-attention null explicitly.
        if (defaults.SlidingWindow is not null) json["sliding_window"] = null;
        foreach (var (key, value) in config.Source ?? new Dictionary<string, System.Text.Json.JsonElement>())
        {
            if (!json.ContainsKey(key)) json[key] = JsonNode.Parse(value.GetRawText());
        }
        HfRopeConfig.Write(json, config.Rope);
        return json;
    }

    private static void CheckSlidingWindow(JsonFieldReader config, ArchitectureDefaults defaults)
    {
        const string key = "sliding_window";
        bool absent = !config.Contains(key);
        int? window = absent ? defaults.SlidingWindow : config.Integer(key);
        config.MarkRead(key);
        if (window is int w)
        {
            string why = absent ? $" (MistralConfig's default when the key is absent)" : "";
            throw config.Error($"sliding_window {w}{why} is not supported; expected null (full causal attention).");
        }
    }

    private static string ReadArchitecture(JsonFieldReader config)
    {
        string? modelType = config.String("model_type");
        string? architecture = null;
        if (config.Node("architectures") is JsonNode node)
        {
            if (node is not JsonArray arr || arr.Count != 1 || arr[0]?.GetValueKind() != System.Text.Json.JsonValueKind.String)
                throw config.Invalid("architectures", "a list of one class name");
            architecture = arr[0]!.GetValue<string>();
        }
        architecture ??= modelType switch
        {
            "llama" => LlamaArchitectures.Llama,
            "mistral" => LlamaArchitectures.Mistral,
            null => throw config.Error("config names neither architectures nor model_type; expected architectures [\"LlamaForCausalLM\"]."),
            _ => throw config.Error($"model_type '{modelType}' is not supported; expected 'llama' or 'mistral'."),
        };
        if (!LlamaArchitectures.Supported.Contains(architecture))
        {
            string why = KnownIncompatible.TryGetValue(architecture, out string? reason) ? $" ({reason})" : "";
            throw config.Error($"architecture '{architecture}' is not supported{why}; expected one of {string.Join(", ", LlamaArchitectures.Supported)}.");
        }
        string expectedType = Defaults[architecture].ModelType;
        if (modelType is not null && modelType != expectedType)
            throw config.Error($"model_type '{modelType}' does not match architecture '{architecture}'; expected '{expectedType}'.");
        return architecture;
    }

    private static int Required(JsonFieldReader config, string key)
        => config.Integer(key) ?? throw config.Error($"config lacks required field '{key}'.");

    private static string Shorten(string json) => json.Length <= 80 ? json : json[..77] + "...";
}
