namespace LongContext.Training;

/// <summary>
/// Splits trainable parameters into the AdamW group that decays and the one that does not, by name and shape.
/// </summary>
/// <remarks>
/// <para>HF Trainer's <c>get_decay_parameter_names</c> exempts parameters inside <c>nn.LayerNorm</c> modules and
/// those whose lower-cased name contains <c>bias</c>, <c>layernorm</c> or <c>rmsnorm</c>; it decays embeddings, and
/// Llama's final <c>model.norm.weight</c> (an RMSNorm named neither way) slips through and decays. The rules here,
/// on the lower-cased name split at dots, give the intended result for Llama-family names without module types:</para>
/// <list type="number">
/// <item>a name containing an entry of <see cref="WeightDecayRules.NoDecayNameContains"/>: <see cref="NoDecayReason.Listed"/>;</item>
/// <item>a name with a segment starting with <c>lora_</c> (LoRA A and B, also of an embedding): a matrix, decays;</item>
/// <item>the last segment (the parameter's own name) containing <c>bias</c>: <see cref="NoDecayReason.Bias"/>;</item>
/// <item>a segment containing <c>embed</c>, or equal to <c>wte</c> or <c>wpe</c>: <see cref="NoDecayReason.Embedding"/>;</item>
/// <item>a segment containing <c>norm</c> (<c>input_layernorm</c>, <c>post_attention_layernorm</c>, <c>model.norm</c>): <see cref="NoDecayReason.Norm"/>;</item>
/// <item>any other 1-D parameter (a norm or bias under another name): <see cref="NoDecayReason.Norm"/>;</item>
/// <item>everything else decays.</item>
/// </list>
/// <para>A category decays after all when its <see cref="WeightDecayRules"/> flag is set.</para>
/// </remarks>
public static class ParameterGroups
{
    /// <summary>The category of one parameter under the rules (before the rules' Decay* flags are applied).</summary>
    /// <param name="name">Full parameter name.</param>
    /// <param name="dimensions">The parameter's number of dimensions.</param>
    /// <param name="rules">The rules in force.</param>
    public static NoDecayReason Classify(string name, long dimensions, WeightDecayRules rules)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(rules);
        string lower = name.ToLowerInvariant();
        if (rules.NoDecayNameContains.Any(f => lower.Contains(f.ToLowerInvariant(), StringComparison.Ordinal)))
            return NoDecayReason.Listed;
        string[] segments = lower.Split('.');
        if (segments.Any(s => s.StartsWith("lora_", StringComparison.Ordinal))) return NoDecayReason.None;
        NoDecayReason reason = NoDecayReason.None;
        if (segments[^1].Contains("bias", StringComparison.Ordinal)) reason = NoDecayReason.Bias;
        else if (segments.Any(s => s.Contains("embed", StringComparison.Ordinal) || s is "wte" or "wpe")) reason = NoDecayReason.Embedding;
        else if (segments.Any(s => s.Contains("norm", StringComparison.Ordinal))) reason = NoDecayReason.Norm;
        else if (dimensions <= 1) reason = NoDecayReason.Norm;
        bool decaysAnyway = reason switch
        {
            NoDecayReason.Bias => rules.DecayBiases,
            NoDecayReason.Embedding => rules.DecayEmbeddings,
            NoDecayReason.Norm => rules.DecayNorms,
            _ => false,
        };
        return decaysAnyway ? NoDecayReason.None : reason;
    }

    /// <summary>Splits <paramref name="parameters"/> into (decay, no decay), keeping their order.</summary>
    /// <param name="parameters">Trainable parameters by name (<see cref="TrainableParameters.Select"/>).</param>
    /// <param name="rules">The rules in force.</param>
    /// <exception cref="ArgumentException">Two parameters share a name.</exception>
    public static (IReadOnlyList<NamedParameter> Decay, IReadOnlyList<NamedParameter> NoDecay) Split(
        IEnumerable<NamedParameter> parameters, WeightDecayRules rules)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(rules);
        var decay = new List<NamedParameter>();
        var noDecay = new List<NamedParameter>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (NamedParameter p in parameters)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(parameters));
            if (!seen.Add(p.Name)) throw new ArgumentException($"parameter name '{p.Name}' appears twice; names must be unique.", nameof(parameters));
            (Classify(p.Name, p.Parameter.dim(), rules) == NoDecayReason.None ? decay : noDecay).Add(p);
        }
        return (decay, noDecay);
    }
}
