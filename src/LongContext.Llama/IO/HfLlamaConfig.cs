using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Rope;

namespace LongContext.Llama.IO;

/// <summary>The HF <c>config.json</c> shape of a Llama-family model: the only place its snake_case names live.</summary>
internal static class HfLlamaConfig
{
    /// <summary>Fields read into <see cref="LlamaConfig"/> (or checked to hold the Llama value).</summary>
    private static readonly HashSet<string> MathFields = new(StringComparer.Ordinal)
    {
        "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings",
        "tie_word_embeddings", "attention_bias", "mlp_bias", "attention_dropout", "hidden_act", "sliding_window",
        // read by HfRopeConfig
        "rope_parameters", "rope_scaling", "rope_theta", "partial_rotary_factor",
        // HF splits matmuls into pretraining_tp slices: the same math.
        "pretraining_tp",
    };

    /// <summary>Bookkeeping fields that do not change the forward pass.</summary>
    private static readonly HashSet<string> HarmlessFields = new(StringComparer.Ordinal)
    {
        "torch_dtype", "dtype", "bos_token_id", "eos_token_id", "pad_token_id", "transformers_version", "use_cache",
        "initializer_range", "_name_or_path", "output_attentions", "output_hidden_states", "return_dict",
        "tokenizer_class", "_attn_implementation", "_attn_implementation_autoset", "id2label", "label2id",
        "torchscript", "is_encoder_decoder", "problem_type", "finetuning_task", "prefix", "task_specific_params",
        "chunk_size_feed_forward", "max_length", "min_length", "do_sample", "temperature", "top_p", "top_k",
        "num_beams", "repetition_penalty", "use_return_dict", "tie_encoder_decoder", "cross_attention_hidden_size",
        "add_cross_attention", "is_decoder", "early_stopping", "bad_words_ids", "sep_token_id", "decoder_start_token_id",
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

    public static LlamaConfig Read(JsonObject json, IEnumerable<string>? acceptFields)
    {
        ArgumentNullException.ThrowIfNull(json);
        var accepted = new HashSet<string>(acceptFields ?? [], StringComparer.Ordinal);
        string[] unknown = json.Select(kv => kv.Key)
            .Where(k => !MathFields.Contains(k) && !HarmlessFields.Contains(k) && !accepted.Contains(k))
            .OrderBy(k => k, StringComparer.Ordinal).ToArray();
        if (unknown.Length > 0)
            throw new InvalidDataException(
                $"config has fields this Llama implementation does not know: {string.Join(", ", unknown)}. They may change the model's math; " +
                "if they do not, pass them in acceptFields.");

        string architecture = ReadArchitecture(json);
        string? hiddenAct = GetString(json, "hidden_act");
        if (hiddenAct is not null && hiddenAct != "silu")
            throw new InvalidDataException($"hidden_act '{hiddenAct}' is not supported; expected 'silu' (SwiGLU MLP).");
        if (json["sliding_window"] is JsonNode sw && sw.GetValueKind() != JsonValueKind.Null)
            throw new InvalidDataException($"sliding_window {sw.ToJsonString()} is not supported; expected null (full causal attention).");

        int hidden = GetInt(json, "hidden_size") ?? throw Missing("hidden_size");
        int heads = GetInt(json, "num_attention_heads") ?? throw Missing("num_attention_heads");
        RopeParameters rope;
        try { rope = HfRopeConfig.Read(json); }
        catch (Exception e) when (e is ArgumentException or FormatException or NotSupportedException or InvalidOperationException)
        {
            throw new InvalidDataException($"rope settings are invalid: {e.Message}", e);
        }

        var config = new LlamaConfig
        {
            Architecture = architecture,
            VocabSize = GetInt(json, "vocab_size") ?? throw Missing("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = GetInt(json, "intermediate_size") ?? throw Missing("intermediate_size"),
            NumHiddenLayers = GetInt(json, "num_hidden_layers") ?? throw Missing("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = GetInt(json, "num_key_value_heads") ?? heads,
            HeadDim = GetInt(json, "head_dim") ?? (heads > 0 ? hidden / heads : 0),
            RmsNormEps = GetDouble(json, "rms_norm_eps") ?? 1e-6,
            MaxPositionEmbeddings = GetInt(json, "max_position_embeddings") ?? 2048,
            TieWordEmbeddings = GetBool(json, "tie_word_embeddings") ?? false,
            AttentionBias = GetBool(json, "attention_bias") ?? false,
            MlpBias = GetBool(json, "mlp_bias") ?? false,
            AttentionDropout = GetDouble(json, "attention_dropout") ?? 0,
            Rope = rope,
            Source = (JsonObject)json.DeepClone(),
        };
        try { return config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"config is invalid: {e.Message}", e); }
    }

    public static JsonObject Write(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var json = config.Source is null ? new JsonObject() : (JsonObject)config.Source.DeepClone();
        json["architectures"] = new JsonArray(config.Architecture);
        json["model_type"] = config.Architecture == LlamaArchitectures.Mistral ? "mistral" : "llama";
        json["vocab_size"] = config.VocabSize;
        json["hidden_size"] = config.HiddenSize;
        json["intermediate_size"] = config.IntermediateSize;
        json["num_hidden_layers"] = config.NumHiddenLayers;
        json["num_attention_heads"] = config.NumAttentionHeads;
        json["num_key_value_heads"] = config.NumKeyValueHeads;
        json["head_dim"] = config.HeadDim;
        json["rms_norm_eps"] = config.RmsNormEps;
        json["max_position_embeddings"] = config.MaxPositionEmbeddings;
        json["tie_word_embeddings"] = config.TieWordEmbeddings;
        json["attention_bias"] = config.AttentionBias;
        json["mlp_bias"] = config.MlpBias;
        json["attention_dropout"] = config.AttentionDropout;
        json["hidden_act"] = "silu";
        HfRopeConfig.Write(json, config.Rope);
        return json;
    }

    private static string ReadArchitecture(JsonObject json)
    {
        string? modelType = GetString(json, "model_type");
        string? architecture = null;
        if (json["architectures"] is JsonNode node && node.GetValueKind() != JsonValueKind.Null)
        {
            if (node is not JsonArray arr || arr.Count != 1 || arr[0]?.GetValueKind() != JsonValueKind.String)
                throw new InvalidDataException($"architectures must be a list of one class name; got {node.ToJsonString()}.");
            architecture = arr[0]!.GetValue<string>();
        }
        architecture ??= modelType switch
        {
            "llama" => LlamaArchitectures.Llama,
            "mistral" => LlamaArchitectures.Mistral,
            null => throw new InvalidDataException("config names neither architectures nor model_type; expected architectures [\"LlamaForCausalLM\"]."),
            _ => throw new InvalidDataException($"model_type '{modelType}' is not supported; expected 'llama' or 'mistral'."),
        };
        if (!LlamaArchitectures.Supported.Contains(architecture))
        {
            string why = KnownIncompatible.TryGetValue(architecture, out string? reason) ? $" ({reason})" : "";
            throw new InvalidDataException(
                $"architecture '{architecture}' is not supported{why}; expected one of {string.Join(", ", LlamaArchitectures.Supported)}.");
        }
        string expectedType = architecture == LlamaArchitectures.Mistral ? "mistral" : "llama";
        if (modelType is not null && modelType != expectedType)
            throw new InvalidDataException($"model_type '{modelType}' does not match architecture '{architecture}'; expected '{expectedType}'.");
        return architecture;
    }

    private static InvalidDataException Missing(string field) => new($"config lacks required field '{field}'.");

    private static JsonNode? Value(JsonObject json, string field)
        => json[field] is JsonNode n && n.GetValueKind() != JsonValueKind.Null ? n : null;

    private static int? GetInt(JsonObject json, string field)
    {
        JsonNode? n = Value(json, field);
        if (n is null) return null;
        if (n.GetValueKind() == JsonValueKind.Number && n.AsValue().TryGetValue(out int v)) return v;
        throw new InvalidDataException($"{field} must be an integer; got {n.ToJsonString()}.");
    }

    private static double? GetDouble(JsonObject json, string field)
    {
        JsonNode? n = Value(json, field);
        if (n is null) return null;
        if (n.GetValueKind() == JsonValueKind.Number) return n.GetValue<double>();
        throw new InvalidDataException($"{field} must be a number; got {n.ToJsonString()}.");
    }

    private static bool? GetBool(JsonObject json, string field)
    {
        JsonNode? n = Value(json, field);
        if (n is null) return null;
        return n.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{field} must be true or false; got {n.ToJsonString()}."),
        };
    }

    private static string? GetString(JsonObject json, string field)
    {
        JsonNode? n = Value(json, field);
        if (n is null) return null;
        if (n.GetValueKind() == JsonValueKind.String) return n.GetValue<string>();
        throw new InvalidDataException($"{field} must be a string; got {n.ToJsonString()}.");
    }
}
