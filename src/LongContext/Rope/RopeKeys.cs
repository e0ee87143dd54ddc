namespace LongContext.Rope;

/// <summary>
/// The one description of every rope field and of which fields each <see cref="RopeType"/> takes, as HF
/// transformers pairs <c>ROPE_INIT_FUNCTIONS</c> with its per-type <c>_validate_*_rope_parameters</c> (v5). The
/// <see cref="RopeParameters"/> init accessors run each key's check, <see cref="RopeParameters.Validate"/> derives the
/// per-type rules (unused fields unset, required ones set), and <c>LongContext.IO.HfRopeConfig</c> derives reading and
/// writing (<c>rope_parameters</c> keys, null and falsy values) from the same entries.
/// </summary>
internal static class RopeKeys
{
    /// <summary>HF's default <c>rope_theta</c>.</summary>
    public const double DefaultTheta = 10000;
    /// <summary>YaRN's <c>beta_fast</c> when unset (HF: <c>beta_fast or 32</c>).</summary>
    public const double DefaultBetaFast = 32;
    /// <summary>YaRN's <c>beta_slow</c> when unset (HF: <c>beta_slow or 1</c>).</summary>
    public const double DefaultBetaSlow = 1;
    /// <summary>YaRN's <c>truncate</c> when absent (HF: <c>get("truncate", True)</c>).</summary>
    public const bool DefaultTruncate = true;

    /// <summary><c>rope_theta</c>: positive and finite.</summary>
    public static readonly RopeKey<double> Theta = new(nameof(RopeParameters.Theta), "rope_theta",
        p => p.Theta, (p, v) => p with { Theta = v }, DefaultTheta, PositiveFinite);

    /// <summary><c>partial_rotary_factor</c>: in (0, 1]; every type takes it.</summary>
    public static readonly RopeKey<double> PartialRotaryFactor = new(nameof(RopeParameters.PartialRotaryFactor), "partial_rotary_factor",
        p => p.PartialRotaryFactor, (p, v) => p with { PartialRotaryFactor = v }, 1.0,
        v => v > 0 && v <= 1 ? null : "must be in (0, 1]");

    /// <summary><c>factor</c>: finite and at least 1 (a null one is derived for yarn and longrope, <see cref="RopeTypeKeys.FactorDefaultsToWindowRatio"/>).</summary>
    public static readonly RopeKey<double> Factor = new(nameof(RopeParameters.Factor), "factor",
        p => p.Factor, (p, v) => p with { Factor = v }, 1.0,
        v => double.IsFinite(v) && v >= 1 ? null : "must be a finite number >= 1");

    /// <summary><c>original_max_position_embeddings</c>: positive.</summary>
    public static readonly RopeKey<int?> OriginalMaxPositionEmbeddings = new(nameof(RopeParameters.OriginalMaxPositionEmbeddings), "original_max_position_embeddings",
        p => p.OriginalMaxPositionEmbeddings, (p, v) => p with { OriginalMaxPositionEmbeddings = v }, null,
        v => v > 0 ? null : "must be positive");

    /// <summary><c>attention_factor</c>: positive and finite; null is unset (HF tests <c>is None</c>, so 0 is a value: refused, it would zero cos and sin).</summary>
    public static readonly RopeKey<double?> AttentionFactor = new(nameof(RopeParameters.AttentionFactor), "attention_factor",
        p => p.AttentionFactor, (p, v) => p with { AttentionFactor = v }, null, v => PositiveFinite(v!.Value), onNull: RopeNull.Unset);

    /// <summary><c>beta_fast</c>: positive; HF reads <c>beta_fast or 32</c>, so 0 means unset.</summary>
    public static readonly RopeKey<double?> BetaFast = new(nameof(RopeParameters.BetaFast), "beta_fast",
        p => p.BetaFast, (p, v) => p with { BetaFast = v }, null, v => PositiveFinite(v!.Value), falsyIsUnset: true, onNull: RopeNull.Unset);

    /// <summary><c>beta_slow</c>: positive; HF reads <c>beta_slow or 1</c>, so 0 means unset.</summary>
    public static readonly RopeKey<double?> BetaSlow = new(nameof(RopeParameters.BetaSlow), "beta_slow",
        p => p.BetaSlow, (p, v) => p with { BetaSlow = v }, null, v => PositiveFinite(v!.Value), falsyIsUnset: true, onNull: RopeNull.Unset);

    /// <summary><c>mscale</c>: positive; HF uses it only when <c>mscale and mscale_all_dim</c>, so 0 means unset.</summary>
    public static readonly RopeKey<double?> Mscale = new(nameof(RopeParameters.Mscale), "mscale",
        p => p.Mscale, (p, v) => p with { Mscale = v }, null, v => PositiveFinite(v!.Value), falsyIsUnset: true, onNull: RopeNull.Unset);

    /// <summary><c>mscale_all_dim</c>: positive; 0 means unset, as for <see cref="Mscale"/>.</summary>
    public static readonly RopeKey<double?> MscaleAllDim = new(nameof(RopeParameters.MscaleAllDim), "mscale_all_dim",
        p => p.MscaleAllDim, (p, v) => p with { MscaleAllDim = v }, null, v => PositiveFinite(v!.Value), falsyIsUnset: true, onNull: RopeNull.Unset);

    /// <summary><c>truncate</c>: HF tests <c>if truncate</c> on <c>get("truncate", True)</c>: absent is true, an explicit null reads as false.</summary>
    public static readonly RopeKey<bool?> Truncate = new(nameof(RopeParameters.Truncate), "truncate",
        p => p.Truncate, (p, v) => p with { Truncate = v }, null, _ => null, onNull: RopeNull.ReadsAsFalse);

    /// <summary><c>short_factor</c>: positive finite numbers, rotaryDim/2 of them.</summary>
    public static readonly RopeKey<IReadOnlyList<double>?> ShortFactor = new(nameof(RopeParameters.ShortFactor), "short_factor",
        p => p.ShortFactor, (p, v) => p with { ShortFactor = v }, null, PositiveFiniteList);

    /// <summary><c>long_factor</c>: positive finite numbers, rotaryDim/2 of them.</summary>
    public static readonly RopeKey<IReadOnlyList<double>?> LongFactor = new(nameof(RopeParameters.LongFactor), "long_factor",
        p => p.LongFactor, (p, v) => p with { LongFactor = v }, null, PositiveFiniteList);

    /// <summary><c>low_freq_factor</c>: positive and finite.</summary>
    public static readonly RopeKey<double?> LowFreqFactor = new(nameof(RopeParameters.LowFreqFactor), "low_freq_factor",
        p => p.LowFreqFactor, (p, v) => p with { LowFreqFactor = v }, null, v => PositiveFinite(v!.Value));

    /// <summary><c>high_freq_factor</c>: positive and finite, greater than <see cref="LowFreqFactor"/>.</summary>
    public static readonly RopeKey<double?> HighFreqFactor = new(nameof(RopeParameters.HighFreqFactor), "high_freq_factor",
        p => p.HighFreqFactor, (p, v) => p with { HighFreqFactor = v }, null, v => PositiveFinite(v!.Value));

    /// <summary>Every key, in the order they are written.</summary>
    public static readonly IReadOnlyList<RopeKey> All =
    [
        Theta, Factor, PartialRotaryFactor, OriginalMaxPositionEmbeddings, AttentionFactor, BetaFast, BetaSlow, Mscale,
        MscaleAllDim, Truncate, ShortFactor, LongFactor, LowFreqFactor, HighFreqFactor,
    ];

    /// <summary>The keys every rope type takes.</summary>
    public static readonly IReadOnlyList<RopeKey> Common = [Theta, PartialRotaryFactor];

    /// <summary>
    /// Per rope type: the HF name, the keys a config must carry (HF's <c>KeyError</c> when missing), the optional
    /// ones, and the checks between fields. <c>original_max_position_embeddings</c> is optional here because HF's
    /// standardization fills it from <c>max_position_embeddings</c> before validating.
    /// </summary>
    public static readonly IReadOnlyList<RopeTypeKeys> Types =
    [
        new(RopeType.Default, "default", Required: [], Optional: []),
        new(RopeType.Linear, "linear", Required: [Factor], Optional: []),
        new(RopeType.Dynamic, "dynamic", Required: [Factor], Optional: []),
        new(RopeType.Yarn, "yarn", Required: [Factor],
            Optional: [OriginalMaxPositionEmbeddings, AttentionFactor, BetaFast, BetaSlow, Mscale, MscaleAllDim, Truncate])
        {
            FactorDefaultsToWindowRatio = true,
            Relations = p =>
            {
                double fast = p.BetaFast ?? DefaultBetaFast, slow = p.BetaSlow ?? DefaultBetaSlow;
                if (fast < slow)
                    throw new ArgumentException($"{BetaFast.Property} ({RopeKey.Show(fast)}) must be at least {BetaSlow.Property} ({RopeKey.Show(slow)}).", BetaFast.Property);
            },
        },
        new(RopeType.LongRope, "longrope", Required: [ShortFactor, LongFactor], Optional: [OriginalMaxPositionEmbeddings, AttentionFactor, Factor])
        {
            FactorDefaultsToWindowRatio = true,
        },
        new(RopeType.Llama3, "llama3", Required: [Factor, LowFreqFactor, HighFreqFactor], Optional: [OriginalMaxPositionEmbeddings])
        {
            Relations = p =>
            {
                if (!(p.HighFreqFactor > p.LowFreqFactor))
                    throw new ArgumentException($"{HighFreqFactor.Property} ({RopeKey.Show(p.HighFreqFactor)}) must be greater than {LowFreqFactor.Property} ({RopeKey.Show(p.LowFreqFactor)}).", HighFreqFactor.Property);
            },
        },
    ];

    /// <summary>The entry of <paramref name="type"/>.</summary>
    public static RopeTypeKeys For(RopeType type) => Types.FirstOrDefault(t => t.Type == type)
        ?? throw new ArgumentOutOfRangeException(nameof(type), type, $"Rope type must be one of {string.Join(", ", Types.Select(t => t.Type))}; got {(int)type}.");

    /// <summary>The entry whose HF name is <paramref name="hfName"/>, or null.</summary>
    public static RopeTypeKeys? ForHfName(string hfName) => Types.FirstOrDefault(t => t.HfName == hfName);

    /// <summary>The key of a <see cref="RopeParameters"/> property, or null.</summary>
    public static RopeKey? ForProperty(string? property) => All.FirstOrDefault(k => k.Property == property);

    /// <summary>The types that take <paramref name="key"/>.</summary>
    public static IEnumerable<RopeType> TypesUsing(RopeKey key) => Types.Where(t => t.Uses(key)).Select(t => t.Type);

    private static string? PositiveFinite(double v) => v > 0 && double.IsFinite(v) ? null : "must be a positive finite number";

    private static string? PositiveFiniteList(IReadOnlyList<double>? list)
    {
        for (int i = 0; i < list!.Count; i++)
            if (PositiveFinite(list[i]) is not null) return $"must hold positive finite numbers (entry {i} is {RopeKey.Show(list[i])})";
        return null;
    }
}

/// <summary>The keys of one rope type (an entry of <see cref="RopeKeys.Types"/>).</summary>
/// <param name="Type">The rope type.</param>
/// <param name="HfName">HF's <c>rope_type</c> name.</param>
/// <param name="Required">Keys the type needs (besides the common ones).</param>
/// <param name="Optional">Keys the type may take (besides the common ones).</param>
internal sealed record RopeTypeKeys(RopeType Type, string HfName, IReadOnlyList<RopeKey> Required, IReadOnlyList<RopeKey> Optional)
{
    /// <summary>
    /// Whether an unset <c>factor</c> is <c>max_position_embeddings / original_max_position_embeddings</c> (HF's
    /// yarn and longrope: <c>if factor is None</c>).
    /// </summary>
    public bool FactorDefaultsToWindowRatio { get; init; }

    /// <summary>Checks between fields (an <see cref="ArgumentException"/> names the property), or null.</summary>
    public Action<RopeParameters>? Relations { get; init; }

    /// <summary>Whether the type takes the pretraining window (<c>original_max_position_embeddings</c>).</summary>
    public bool UsesOriginalWindow => Optional.Contains(RopeKeys.OriginalMaxPositionEmbeddings);

    /// <summary>Whether the type takes <paramref name="key"/>.</summary>
    public bool Uses(RopeKey key) => RopeKeys.Common.Contains(key) || Required.Contains(key) || Optional.Contains(key);

    /// <summary>The keys the type takes, common ones first.</summary>
    public IEnumerable<RopeKey> Keys => RopeKeys.All.Where(Uses);
}
