using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.Rope;

namespace LongContext.IO;

/// <summary>
/// Reads and writes the rotary embedding part of an HF <c>config.json</c> as <see cref="RopeParameters"/>.
/// <para>
/// Reading accepts the transformers v5 form (<c>rope_parameters</c> with <c>rope_theta</c> inside) and the legacy
/// form (<c>rope_scaling</c>, possibly null, plus a top-level <c>rope_theta</c>; <c>type</c> is an alias of
/// <c>rope_type</c>), and resolves defaults as HF's <c>standardize_rope_params</c> does: theta from inside the rope
/// object, else top level, else 10000; a top-level <c>partial_rotary_factor</c> or (for yarn / longrope / llama3)
/// <c>original_max_position_embeddings</c> wins over the one inside (Phi-3 keeps its window there); the original
/// window defaults to <c>max_position_embeddings</c>; a longrope config without <c>factor</c> gets
/// <c>max_position_embeddings / original_max_position_embeddings</c>. Unknown keys, keys the rope type does not
/// use, missing required keys and invalid values throw an <see cref="InvalidDataException"/> naming the key.
/// </para>
/// </summary>
public static class HfRopeConfig
{
    private static readonly Dictionary<string, RopeType> TypesByName = new(StringComparer.Ordinal)
    {
        ["default"] = RopeType.Default, ["linear"] = RopeType.Linear, ["dynamic"] = RopeType.Dynamic,
        ["yarn"] = RopeType.Yarn, ["longrope"] = RopeType.LongRope, ["llama3"] = RopeType.Llama3,
    };

    private static readonly string[] Common = ["rope_type", "type", "rope_theta", "partial_rotary_factor"];

    /// <summary>The keys each rope type accepts besides <see cref="Common"/> (HF's required + optional keys).</summary>
    private static readonly Dictionary<RopeType, string[]> KeysByType = new()
    {
        [RopeType.Default] = [],
        [RopeType.Linear] = ["factor"],
        [RopeType.Dynamic] = ["factor"],
        [RopeType.Yarn] = ["factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"],
        [RopeType.LongRope] = ["short_factor", "long_factor", "original_max_position_embeddings", "attention_factor", "factor"],
        [RopeType.Llama3] = ["factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"],
    };

    /// <summary>JSON key of each <see cref="RopeParameters"/> property, for error messages.</summary>
    private static readonly Dictionary<string, string> KeyByProperty = new(StringComparer.Ordinal)
    {
        [nameof(RopeParameters.Type)] = "rope_type", [nameof(RopeParameters.Theta)] = "rope_theta",
        [nameof(RopeParameters.Factor)] = "factor", [nameof(RopeParameters.OriginalMaxPositionEmbeddings)] = "original_max_position_embeddings",
        [nameof(RopeParameters.PartialRotaryFactor)] = "partial_rotary_factor", [nameof(RopeParameters.AttentionFactor)] = "attention_factor",
        [nameof(RopeParameters.BetaFast)] = "beta_fast", [nameof(RopeParameters.BetaSlow)] = "beta_slow",
        [nameof(RopeParameters.Mscale)] = "mscale", [nameof(RopeParameters.MscaleAllDim)] = "mscale_all_dim",
        [nameof(RopeParameters.Truncate)] = "truncate", [nameof(RopeParameters.ShortFactor)] = "short_factor",
        [nameof(RopeParameters.LongFactor)] = "long_factor", [nameof(RopeParameters.LowFreqFactor)] = "low_freq_factor",
        [nameof(RopeParameters.HighFreqFactor)] = "high_freq_factor", ["headDim"] = "head_dim",
        ["maxPositionEmbeddings"] = "max_position_embeddings",
    };

    /// <summary>
    /// Reads the rope configuration of a model <c>config.json</c>. When the config gives the head dimension
    /// (<c>head_dim</c>, or <c>hidden_size / num_attention_heads</c>) and <c>max_position_embeddings</c>, the result is
    /// fully validated (<see cref="RopeParameters.Validate"/>), list lengths included.
    /// </summary>
    /// <param name="config">The parsed <c>config.json</c> object.</param>
    /// <exception cref="InvalidDataException">A key is unknown, unused by the rope type, missing or invalid; the message names it.</exception>
    public static RopeParameters Read(JsonObject config)
    {
        ArgumentNullException.ThrowIfNull(config);
        JsonObject rope = RopeObject(config, out string where);

        string[] unknown = rope.Select(kv => kv.Key)
            .Where(k => !Common.Contains(k) && !KeysByType.Values.Any(keys => keys.Contains(k))).ToArray();
        if (unknown.Length > 0)
            throw new InvalidDataException($"{where} has unknown key(s) {Quote(unknown)}; known keys are {Quote(Common.Concat(KeysByType.Values.SelectMany(k => k)).Distinct())}.");

        RopeType type = ReadType(rope, where);
        string[] unused = rope.Select(kv => kv.Key).Where(k => !Common.Contains(k) && !KeysByType[type].Contains(k)).ToArray();
        if (unused.Length > 0)
            throw new InvalidDataException($"{where} key(s) {Quote(unused)} are not used by rope_type '{Name(type)}' (they would be ignored); remove them or fix rope_type.");

        int? maxPositions = Integer(config, "max_position_embeddings", "config.json");
        double theta = Number(rope, "rope_theta", where) ?? Number(config, "rope_theta", "config.json") ?? 10000;
        double partial = Number(config, "partial_rotary_factor", "config.json") ?? Number(rope, "partial_rotary_factor", where) ?? 1;

        int? original = null;
        if (type is RopeType.Yarn or RopeType.LongRope or RopeType.Llama3)
        {
            original = Integer(config, "original_max_position_embeddings", "config.json")
                       ?? Integer(rope, "original_max_position_embeddings", where)
                       ?? maxPositions
                       ?? throw new InvalidDataException($"{where}.original_max_position_embeddings is required for rope_type '{Name(type)}' when config.json has no max_position_embeddings.");
        }

        double factor = 1;
        if (type is RopeType.Linear or RopeType.Dynamic or RopeType.Yarn or RopeType.Llama3)
            factor = Number(rope, "factor", where) ?? throw Missing(where, "factor", type);
        else if (type == RopeType.LongRope)
            factor = Number(rope, "factor", where)
                     ?? (maxPositions is int max ? (double)max / original!.Value
                         : throw new InvalidDataException($"{where}.factor is required for rope_type 'longrope' when config.json has no max_position_embeddings."));

        var p = new RopeParameters
        {
            Type = type, Theta = theta, Factor = factor, PartialRotaryFactor = partial, OriginalMaxPositionEmbeddings = original,
            AttentionFactor = Number(rope, "attention_factor", where),
            BetaFast = Number(rope, "beta_fast", where), BetaSlow = Number(rope, "beta_slow", where),
            Mscale = Number(rope, "mscale", where), MscaleAllDim = Number(rope, "mscale_all_dim", where),
            Truncate = Boolean(rope, "truncate", where),
            ShortFactor = List(rope, "short_factor", where), LongFactor = List(rope, "long_factor", where),
            LowFreqFactor = Number(rope, "low_freq_factor", where), HighFreqFactor = Number(rope, "high_freq_factor", where),
        };
        if (type == RopeType.LongRope)
        {
            if (p.ShortFactor is null) throw Missing(where, "short_factor", type);
            if (p.LongFactor is null) throw Missing(where, "long_factor", type);
        }
        if (type == RopeType.Llama3)
        {
            if (p.LowFreqFactor is null) throw Missing(where, "low_freq_factor", type);
            if (p.HighFreqFactor is null) throw Missing(where, "high_freq_factor", type);
        }

        int? headDim = Integer(config, "head_dim", "config.json");
        if (headDim is null && Integer(config, "hidden_size", "config.json") is int hidden && Integer(config, "num_attention_heads", "config.json") is int heads && heads > 0)
            headDim = hidden / heads;
        try
        {
            if (headDim is int d && maxPositions is int m) p.Validate(d, m);
            else p.ValidateFields();
        }
        catch (ArgumentException e)
        {
            string key = e.ParamName is string n && KeyByProperty.TryGetValue(n, out string? k) ? k : e.ParamName ?? "?";
            throw new InvalidDataException($"{where}.{key} is invalid: {e.Message}", e);
        }
        return p;
    }

    /// <summary>
    /// Writes <paramref name="p"/> into <paramref name="config"/> as a v5 <c>rope_parameters</c> object (fields left
    /// at their defaults are omitted, except <c>rope_type</c>, <c>rope_theta</c> and, for scaled types, <c>factor</c>).
    /// The legacy <c>rope_scaling</c> and top-level <c>rope_theta</c> are removed; a top-level
    /// <c>partial_rotary_factor</c> or <c>original_max_position_embeddings</c>, which HF reads in preference, is
    /// updated to the same value (or removed when <paramref name="p"/> leaves it unset), so that
    /// <see cref="Read"/> and HF read back the same parameters.
    /// </summary>
    /// <param name="config">The <c>config.json</c> object to update.</param>
    /// <param name="p">The parameters (validated first).</param>
    public static void Write(JsonObject config, RopeParameters p)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(p);
        p.ValidateFields();
        var rope = new JsonObject
        {
            ["rope_type"] = Name(p.Type),
            ["rope_theta"] = p.Theta,
        };
        if (p.Type != RopeType.Default) rope["factor"] = p.Factor;
        if (p.PartialRotaryFactor != 1) rope["partial_rotary_factor"] = p.PartialRotaryFactor;
        if (p.OriginalMaxPositionEmbeddings is int orig) rope["original_max_position_embeddings"] = orig;
        if (p.AttentionFactor is double a) rope["attention_factor"] = a;
        if (p.BetaFast is double bf) rope["beta_fast"] = bf;
        if (p.BetaSlow is double bs) rope["beta_slow"] = bs;
        if (p.Mscale is double ms) rope["mscale"] = ms;
        if (p.MscaleAllDim is double msa) rope["mscale_all_dim"] = msa;
        if (p.Truncate is bool t) rope["truncate"] = t;
        if (p.ShortFactor is { } sf) rope["short_factor"] = new JsonArray(sf.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
        if (p.LongFactor is { } lf) rope["long_factor"] = new JsonArray(lf.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
        if (p.LowFreqFactor is double lo) rope["low_freq_factor"] = lo;
        if (p.HighFreqFactor is double hi) rope["high_freq_factor"] = hi;

        config.Remove("rope_scaling");
        config.Remove("rope_theta");
        if (config.ContainsKey("partial_rotary_factor")) config["partial_rotary_factor"] = p.PartialRotaryFactor;
        if (config.ContainsKey("original_max_position_embeddings"))
        {
            if (p.OriginalMaxPositionEmbeddings is int o) config["original_max_position_embeddings"] = o;
            else config.Remove("original_max_position_embeddings");
        }
        config["rope_parameters"] = rope;
    }

    /// <summary>The HF name of a rope type (<c>default</c>, <c>linear</c>, <c>dynamic</c>, <c>yarn</c>, <c>longrope</c>, <c>llama3</c>).</summary>
    /// <param name="type">The rope type.</param>
    public static string Name(RopeType type) => TypesByName.First(kv => kv.Value == type).Key;

    private static JsonObject RopeObject(JsonObject config, out string where)
    {
        JsonNode? parameters = config["rope_parameters"], scaling = config["rope_scaling"];
        if (parameters is not null && scaling is not null && !JsonNode.DeepEquals(parameters, scaling))
            throw new InvalidDataException("config.json has both rope_parameters and rope_scaling and they differ; keep one (rope_parameters for transformers v5).");
        JsonNode? node = parameters ?? scaling;
        where = parameters is not null ? "rope_parameters" : "rope_scaling";
        if (node is null) return new JsonObject();
        if (node is not JsonObject obj)
            throw new InvalidDataException($"config.json {where} must be an object or null; got {node.ToJsonString()}.");
        return obj;
    }

    private static RopeType ReadType(JsonObject rope, string where)
    {
        string? ropeType = String(rope, "rope_type", where), alias = String(rope, "type", where);
        if (ropeType is not null && alias is not null && ropeType != alias)
            throw new InvalidDataException($"{where} has rope_type '{ropeType}' and type '{alias}', which differ.");
        string name = ropeType ?? alias ?? "default";
        return TypesByName.TryGetValue(name, out RopeType type)
            ? type
            : throw new InvalidDataException($"{where}.rope_type '{name}' is not supported; expected one of {Quote(TypesByName.Keys)}.");
    }

    private static InvalidDataException Missing(string where, string key, RopeType type)
        => new($"{where}.{key} is required for rope_type '{Name(type)}' but is missing.");

    private static string? String(JsonObject o, string key, string where)
    {
        JsonNode? n = o[key];
        if (n is null) return null;
        return n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>()
            : throw new InvalidDataException($"{where}.{key} must be a string; got {n.ToJsonString()}.");
    }

    private static double? Number(JsonObject o, string key, string where)
    {
        JsonNode? n = o[key];
        if (n is null) return null;
        return n.GetValueKind() == JsonValueKind.Number ? double.Parse(n.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)
            : throw new InvalidDataException($"{where}.{key} must be a number; got {n.ToJsonString()}.");
    }

    private static int? Integer(JsonObject o, string key, string where)
    {
        double? v = Number(o, key, where);
        if (v is null) return null;
        if (v != Math.Floor(v.Value) || v < int.MinValue || v > int.MaxValue)
            throw new InvalidDataException($"{where}.{key} must be an integer; got {v.Value.ToString(CultureInfo.InvariantCulture)}.");
        return (int)v.Value;
    }

    private static bool? Boolean(JsonObject o, string key, string where)
    {
        JsonNode? n = o[key];
        if (n is null) return null;
        return n.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? n.GetValue<bool>()
            : throw new InvalidDataException($"{where}.{key} must be true or false; got {n.ToJsonString()}.");
    }

    private static double[]? List(JsonObject o, string key, string where)
    {
        JsonNode? n = o[key];
        if (n is null) return null;
        if (n is not JsonArray array || array.Any(e => e is null || e.GetValueKind() != JsonValueKind.Number))
            throw new InvalidDataException($"{where}.{key} must be a list of numbers; got {n.ToJsonString()}.");
        return array.Select(e => double.Parse(e!.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray();
    }

    private static string Quote(IEnumerable<string> keys) => string.Join(", ", keys.Select(k => $"'{k}'"));
}
