using System.Text.Json.Nodes;
using LongContext.Rope;

namespace LongContext.IO;

/// <summary>
/// Reads and writes the rope configuration of an HF <c>config.json</c> as <see cref="RopeParameters"/>, computing what
/// HF transformers v5 computes. Which keys each rope type takes, their kinds, checks and null/falsy semantics come
/// from one per-type table (the same one <see cref="RopeParameters.Validate"/> uses).
/// <para>
/// Reading accepts every config HF accepts and reports what HF ignores as warnings instead of dropping it silently:
/// the v5 form (<c>rope_parameters</c> with <c>rope_theta</c> inside) and the legacy form (<c>rope_scaling</c>, possibly
/// null, plus a top-level <c>rope_theta</c>; <c>type</c> is an alias of <c>rope_type</c>); a non-empty
/// <c>rope_scaling</c> wins over <c>rope_parameters</c> (HF: <c>rope_scaling or rope_parameters</c>), <c>rope_type</c>
/// over <c>type</c>, the inner <c>rope_theta</c> over the top-level one (else 10000), and a top-level
/// <c>partial_rotary_factor</c> or (yarn / longrope / llama3) <c>original_max_position_embeddings</c> over the inner
/// one (Phi-3 keeps its window there); the original window defaults to <c>max_position_embeddings</c>; yarn and
/// longrope without a <c>factor</c> value use <c>max_position_embeddings / original_max_position_embeddings</c>.
/// Keys a type does not use are ignored with a warning, as HF does; <c>beta_fast</c>, <c>beta_slow</c>,
/// <c>mscale</c> and <c>mscale_all_dim</c> equal to 0 read as unset (HF tests their truthiness) and an explicit
/// <c>truncate: null</c> reads as false, each with a warning.
/// </para>
/// <para>
/// Refused, with an <see cref="InvalidDataException"/> naming the key, the value and what was expected: what HF
/// refuses or cannot compute (an unknown <c>rope_type</c>, a missing required key, a value of the wrong kind, null
/// where HF needs a number) and values that would change the math here or that HF flags as invalid (<c>factor &lt;
/// 1</c>, <c>attention_factor &lt;= 0</c>, <c>beta_fast &lt; beta_slow</c>, <c>high_freq_factor &lt;=
/// low_freq_factor</c>, factor lists of the wrong length, an odd rotated head dimension).
/// </para>
/// </summary>
public static class HfRopeConfig
{
    /// <summary>
    /// Reads the rope configuration of a model <c>config.json</c> for a model of the given shape (the model's reader
    /// knows it; <c>LlamaConfig.FromJson</c> passes its own) and validates it against that shape.
    /// </summary>
    /// <param name="config">The parsed <c>config.json</c> object.</param>
    /// <param name="headDim">The attention head dimension (HF: <c>head_dim</c>, else <c>hidden_size / num_attention_heads</c>).</param>
    /// <param name="maxPositionEmbeddings">The model's <c>max_position_embeddings</c>.</param>
    /// <returns>The parameters and the warnings about keys HF ignores or reads unusually.</returns>
    /// <exception cref="InvalidDataException">A key is missing or invalid, or the rope type is not supported; the message names it.</exception>
    public static HfRopeReadResult Read(JsonObject config, int headDim, int maxPositionEmbeddings)
    {
        ArgumentNullException.ThrowIfNull(config);
        var warnings = new List<string>();
        RopeParameters p = Read(new JsonFieldReader(config, "config.json"), headDim, maxPositionEmbeddings, warnings);
        return new HfRopeReadResult(p, ValueList<string>.CopyOf(warnings)!);
    }

    /// <summary>The reader behind <see cref="Read(JsonObject, int, int)"/>, on a config reader shared with the model's reader.</summary>
    internal static RopeParameters Read(JsonFieldReader config, int headDim, int maxPositionEmbeddings, ICollection<string> warnings)
    {
        JsonFieldReader rope = RopeObject(config, warnings);
        RopeTypeKeys keys = ReadType(rope, warnings);
        var p = new RopeParameters { Type = keys.Type };

        foreach (string name in rope.Keys)
        {
            if (name is "rope_type" or "type") continue;
            RopeKey? key = RopeKeys.All.FirstOrDefault(k => k.HfName == name);
            if (key is null || !keys.Uses(key))
            {
                rope.MarkRead(name);
                string others = key is null ? "" : $" (a key of {string.Join(", ", RopeKeys.TypesUsing(key).Select(Name))})";
                warnings.Add(rope.Warning($"{rope.Name(name)} = {rope.Show(name)} is not used by rope_type '{keys.HfName}'{others}; HF ignores it (with a warning), and so does this library."));
                continue;
            }
            p = ReadKey(rope, key, keys, p, warnings);
        }
        foreach (RopeKey key in keys.Required)
        {
            if (!rope.Contains(key.HfName))
                throw rope.Error($"{rope.Name(key.HfName)} is required for rope_type '{keys.HfName}' but is missing.");
        }

        p = TopLevel(config, rope, keys, p, maxPositionEmbeddings, warnings);
        try
        {
            p.Validate(headDim, maxPositionEmbeddings);
        }
        catch (ArgumentException e)
        {
            throw e.ParamName switch
            {
                "headDim" => config.Error($"head_dim {headDim} is invalid: {e.Message}", e),
                "maxPositionEmbeddings" => config.Error($"max_position_embeddings {maxPositionEmbeddings} is invalid: {e.Message}", e),
                _ => rope.Error($"{rope.Name(RopeKeys.ForProperty(e.ParamName)?.HfName ?? e.ParamName ?? "?")} is invalid: {e.Message}", e),
            };
        }
        Consistency(rope, keys, p, maxPositionEmbeddings, warnings);
        return p;
    }

    /// <summary>
    /// Writes <paramref name="p"/> into <paramref name="config"/> as a v5 <c>rope_parameters</c> object: the type's
    /// keys that are set (always <c>rope_type</c> and <c>rope_theta</c>, and <c>factor</c> for scaled types). The
    /// legacy <c>rope_scaling</c> and top-level <c>rope_theta</c> are removed; a top-level
    /// <c>partial_rotary_factor</c>, or for yarn / longrope / llama3 <c>original_max_position_embeddings</c>, which HF
    /// reads in preference, is updated to the same value (or removed when <paramref name="p"/> leaves it unset), so
    /// that <see cref="Read(JsonObject, int, int)"/> and HF read back the same parameters. The caller owns <paramref name="config"/> and
    /// writes it out.
    /// </summary>
    /// <param name="config">The <c>config.json</c> object to update.</param>
    /// <param name="p">The parameters.</param>
    /// <exception cref="ArgumentException"><paramref name="p"/> sets a field its type does not use, or misses a required one.</exception>
    public static void Write(JsonObject config, RopeParameters p)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(p);
        p.ValidateKeys();
        RopeTypeKeys keys = RopeKeys.For(p.Type);
        var rope = new JsonObject { ["rope_type"] = keys.HfName };
        foreach (RopeKey key in keys.Keys)
        {
            bool always = key == RopeKeys.Theta || (key == RopeKeys.Factor && p.Type != RopeType.Default);
            if ((always || key.IsSet(p)) && key.Value(p) is { } value) rope[key.HfName] = Node(value);
        }

        config.Remove("rope_scaling");
        config.Remove("rope_theta");
        if (config.ContainsKey(RopeKeys.PartialRotaryFactor.HfName)) config[RopeKeys.PartialRotaryFactor.HfName] = p.PartialRotaryFactor;
        string original = RopeKeys.OriginalMaxPositionEmbeddings.HfName;
        if (keys.UsesOriginalWindow && config.ContainsKey(original))
        {
            if (p.OriginalMaxPositionEmbeddings is int o) config[original] = o;
            else config.Remove(original);
        }
        config["rope_parameters"] = rope;
    }

    /// <summary>The HF name of a rope type (<c>default</c>, <c>linear</c>, <c>dynamic</c>, <c>yarn</c>, <c>longrope</c>, <c>llama3</c>).</summary>
    /// <param name="type">The rope type.</param>
    public static string Name(RopeType type) => RopeKeys.For(type).HfName;

    /// <summary>HF: <c>rope_parameters = rope_scaling or rope_parameters</c> (an empty or null rope_scaling falls through).</summary>
    private static JsonFieldReader RopeObject(JsonFieldReader config, ICollection<string> warnings)
    {
        JsonNode? parametersNode = config.Node("rope_parameters"), scalingNode = config.Node("rope_scaling");
        JsonFieldReader? parameters = config.Object("rope_parameters"), scaling = config.Object("rope_scaling");
        if (scaling is not null && scaling.Keys.Count > 0)
        {
            if (parameters is not null && parameters.Keys.Count > 0 && !JsonNode.DeepEquals(parametersNode, scalingNode))
                warnings.Add(config.Warning("rope_parameters is ignored: the config also has a non-empty rope_scaling, which HF uses in its place (rope_scaling or rope_parameters)."));
            return scaling;
        }
        return parameters ?? new JsonFieldReader(new JsonObject(), config.File, "rope_parameters");
    }

    /// <summary>HF: <c>rope_type</c>, else the legacy <c>type</c>, else <c>default</c>.</summary>
    private static RopeTypeKeys ReadType(JsonFieldReader rope, ICollection<string> warnings)
    {
        string? ropeType = rope.String("rope_type"), alias = rope.String("type");
        if (ropeType is not null && alias is not null && ropeType != alias)
            warnings.Add(rope.Warning($"{rope.Name("type")} '{alias}' is ignored: {rope.Name("rope_type")} is '{ropeType}', which HF uses."));
        string name = ropeType ?? alias ?? "default";
        return RopeKeys.ForHfName(name)
            ?? throw rope.Error($"{rope.Name("rope_type")} '{name}' is not supported; expected one of {string.Join(", ", RopeKeys.Types.Select(t => $"'{t.HfName}'"))}.");
    }

    /// <summary>Reads one key of the type into <paramref name="p"/>, with HF's meaning of null and falsy values.</summary>
    private static RopeParameters ReadKey(JsonFieldReader rope, RopeKey key, RopeTypeKeys keys, RopeParameters p, ICollection<string> warnings)
    {
        string name = key.HfName;
        object? value;
        if (rope.IsNull(name))
        {
            rope.MarkRead(name);
            RopeNull onNull = key == RopeKeys.Factor && keys.FactorDefaultsToWindowRatio ? RopeNull.Unset : key.OnNull;
            switch (onNull)
            {
                case RopeNull.Unset: return p;
                case RopeNull.ReadsAsFalse:
                    warnings.Add(rope.Warning($"{rope.Name(name)} is null, which HF reads as false (it tests the value's truthiness)."));
                    value = false;
                    break;
                default: throw rope.Invalid(name, key.Kind == RopeValueKind.NumberList ? "a list of numbers" : $"{Article(key.Kind)} (HF cannot compute with null)");
            }
        }
        else
        {
            value = key.Kind switch
            {
                RopeValueKind.Number => rope.Number(name),
                RopeValueKind.Integer => rope.Integer(name),
                RopeValueKind.Boolean => rope.Boolean(name),
                _ => rope.Numbers(name),
            };
        }
        if (key.FalsyIsUnset && value is 0.0)
        {
            warnings.Add(rope.Warning($"{rope.Name(name)} is 0, which HF treats as unset (it tests the value's truthiness); the default applies."));
            return p;
        }
        try
        {
            return key.With(p, value);
        }
        catch (ArgumentException e)
        {
            throw rope.Error($"{rope.Name(name)} is invalid: {e.Message}", e);
        }
    }

    /// <summary>The top-level keys HF moves into the rope parameters, and the window-derived defaults.</summary>
    private static RopeParameters TopLevel(JsonFieldReader config, JsonFieldReader rope, RopeTypeKeys keys, RopeParameters p,
        int maxPositionEmbeddings, ICollection<string> warnings)
    {
        // rope_theta: setdefault, so the inner one wins.
        if (config.Number(RopeKeys.Theta.HfName) is double theta)
        {
            if (rope.Contains(RopeKeys.Theta.HfName))
            {
                if (theta != p.Theta)
                    warnings.Add(config.Warning($"rope_theta {RopeKey.Show(theta)} is ignored: {rope.Name("rope_theta")} {RopeKey.Show(p.Theta)} is used, as HF does."));
            }
            else
            {
                p = Set(config, RopeKeys.Theta, p, theta);
            }
        }
        // partial_rotary_factor: HF's standardization assigns the top-level one.
        if (config.Number(RopeKeys.PartialRotaryFactor.HfName) is double partial)
        {
            if (rope.Contains(RopeKeys.PartialRotaryFactor.HfName) && partial != p.PartialRotaryFactor)
                warnings.Add(rope.Warning($"{rope.Name("partial_rotary_factor")} {RopeKey.Show(p.PartialRotaryFactor)} is ignored: the top-level partial_rotary_factor {RopeKey.Show(partial)} is used, as HF does."));
            p = Set(config, RopeKeys.PartialRotaryFactor, p, partial);
        }
        if (keys.UsesOriginalWindow)
        {
            string name = RopeKeys.OriginalMaxPositionEmbeddings.HfName;
            if (config.IsNull(name)) throw config.Invalid(name, "an integer (HF cannot compute with null)");
            if (config.Integer(name) is int top)
            {
                if (p.OriginalMaxPositionEmbeddings is int inner && inner != top)
                    warnings.Add(rope.Warning($"{rope.Name(name)} {inner} is ignored: the top-level {name} {top} is used, as HF does."));
                p = Set(config, RopeKeys.OriginalMaxPositionEmbeddings, p, top);
            }
            else if (p.OriginalMaxPositionEmbeddings is null)
            {
                p = p with { OriginalMaxPositionEmbeddings = maxPositionEmbeddings };
            }
        }
        if (keys.FactorDefaultsToWindowRatio && !(rope.Contains("factor") && !rope.IsNull("factor")))
        {
            double ratio = (double)maxPositionEmbeddings / p.OriginalWindow(maxPositionEmbeddings);
            try { p = p with { Factor = ratio }; }
            catch (ArgumentException e)
            {
                throw rope.Error($"{rope.Name("factor")} is unset, and its default max_position_embeddings / original_max_position_embeddings = {maxPositionEmbeddings} / {p.OriginalWindow(maxPositionEmbeddings)} is invalid: {e.Message}", e);
            }
        }
        return p;
    }

    /// <summary>The warnings HF's validation gives for values it computes with anyway.</summary>
    private static void Consistency(JsonFieldReader rope, RopeTypeKeys keys, RopeParameters p, int maxPositionEmbeddings, ICollection<string> warnings)
    {
        int original = p.OriginalWindow(maxPositionEmbeddings);
        if (keys.Type == RopeType.Yarn)
        {
            double implicitFactor = (double)maxPositionEmbeddings / original;
            if (implicitFactor != p.Factor && implicitFactor != 1)
                warnings.Add(rope.Warning($"{rope.Name("factor")} {RopeKey.Show(p.Factor)} differs from max_position_embeddings / original_max_position_embeddings = {maxPositionEmbeddings} / {original}; the explicit factor is used, as HF does (it warns)."));
            if ((p.Mscale is null) != (p.MscaleAllDim is null))
            {
                string set = p.Mscale is null ? "mscale_all_dim" : "mscale";
                warnings.Add(rope.Warning($"{rope.Name(set)} has no effect without {(set == "mscale" ? "mscale_all_dim" : "mscale")}: HF uses the two only together, so the attention factor is 0.1 ln(factor) + 1."));
            }
        }
        if (keys.Type == RopeType.Llama3 && original >= maxPositionEmbeddings)
            warnings.Add(rope.Warning($"{rope.Name("original_max_position_embeddings")} {original} is not below max_position_embeddings {maxPositionEmbeddings}; HF warns and computes with it, and so does this library."));
    }

    private static RopeParameters Set(JsonFieldReader config, RopeKey key, RopeParameters p, object value)
    {
        try { return key.With(p, value); }
        catch (ArgumentException e) { throw config.Error($"{key.HfName} is invalid: {e.Message}", e); }
    }

    private static string Article(RopeValueKind kind) => kind switch
    {
        RopeValueKind.Integer => "an integer",
        RopeValueKind.Boolean => "true or false",
        _ => "a number",
    };

    private static JsonNode Node(object value) => value switch
    {
        double d => JsonValue.Create(d),
        int i => JsonValue.Create(i),
        bool b => JsonValue.Create(b),
        IEnumerable<double> list => new JsonArray(list.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
        _ => throw new NotSupportedException($"No JSON form for {value.GetType()}."),
    };
}

/// <summary>What <see cref="HfRopeConfig.Read(JsonObject, int, int)"/> read.</summary>
/// <param name="Parameters">The validated rope parameters.</param>
/// <param name="Warnings">One line per key HF ignores or reads unusually (ignored keys, zero values read as unset, values HF warns about), naming the key; empty when there is none.</param>
public sealed record HfRopeReadResult(RopeParameters Parameters, IReadOnlyList<string> Warnings);
