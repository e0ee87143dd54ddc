using System.Globalization;

namespace LongContext.Rope;

/// <summary>
/// The rotary embedding configuration, field for field HF transformers' <c>rope_parameters</c> (read and written as
/// JSON by <c>LongContext.IO.HfRopeConfig</c>). Fields that a <see cref="Type"/> does not use must stay at their
/// defaults (<see langword="null"/>, or 1 for <see cref="Factor"/> of <see cref="RopeType.Default"/>):
/// <see cref="Validate"/> rejects them rather than ignore them.
/// </summary>
public sealed record RopeParameters
{
    /// <summary>The RoPE variant (<c>rope_type</c>).</summary>
    public RopeType Type { get; init; }

    /// <summary>Base period <c>rope_theta</c> (10000 unless set).</summary>
    public double Theta { get; init; } = 10000;

    /// <summary>
    /// Scaling factor (<c>factor</c>), at least 1. Linear: positions are divided by it. Dynamic: the NTK scale reached
    /// at <c>factor</c> x the original window. YaRN / Llama 3: the interpolation factor. LongRoPE: only sets the
    /// default attention factor; HF uses <c>max_position_embeddings / original_max_position_embeddings</c> when the
    /// config has none (<c>HfRopeConfig.Read</c> fills that in; <see cref="LongRope"/> takes it explicitly).
    /// </summary>
    public double Factor { get; init; } = 1;

    /// <summary>
    /// Pretraining window (<c>original_max_position_embeddings</c>) for YaRN, LongRoPE and Llama 3; when
    /// <see langword="null"/> the builders use <c>max_position_embeddings</c>, as HF's standardization does.
    /// Not used by Default, Linear or Dynamic (dynamic scales from <c>max_position_embeddings</c>, as HF does).
    /// </summary>
    public int? OriginalMaxPositionEmbeddings { get; init; }

    /// <summary>Fraction of the head dimension that is rotated (<c>partial_rotary_factor</c>), in (0, 1]; the rotated part is <c>(int)(headDim * f)</c> leading dims.</summary>
    public double PartialRotaryFactor { get; init; } = 1;

    /// <summary>YaRN / LongRoPE: factor cos and sin carry (<c>attention_factor</c>); when <see langword="null"/> it is derived from <see cref="Factor"/> as HF does.</summary>
    public double? AttentionFactor { get; init; }

    /// <summary>YaRN: rotations bounding extrapolation (<c>beta_fast</c>, 32 when <see langword="null"/>).</summary>
    public double? BetaFast { get; init; }

    /// <summary>YaRN: rotations bounding interpolation (<c>beta_slow</c>, 1 when <see langword="null"/>).</summary>
    public double? BetaSlow { get; init; }

    /// <summary>YaRN (DeepSeek): <c>mscale</c>; with <see cref="MscaleAllDim"/> the attention factor is <c>m(factor, mscale) / m(factor, mscale_all_dim)</c>. HF uses it only when both are set.</summary>
    public double? Mscale { get; init; }

    /// <summary>YaRN (DeepSeek): <c>mscale_all_dim</c>; see <see cref="Mscale"/>.</summary>
    public double? MscaleAllDim { get; init; }

    /// <summary>YaRN: round the correction range to whole dimensions (<c>truncate</c>, true when <see langword="null"/>).</summary>
    public bool? Truncate { get; init; }

    /// <summary>LongRoPE: per-frequency factors for sequences within the original window (<c>short_factor</c>, rotaryDim/2 values).</summary>
    public IReadOnlyList<double>? ShortFactor { get; init; }

    /// <summary>LongRoPE: per-frequency factors for sequences past the original window (<c>long_factor</c>, rotaryDim/2 values).</summary>
    public IReadOnlyList<double>? LongFactor { get; init; }

    /// <summary>Llama 3: <c>low_freq_factor</c> (wavelengths above original/low are divided by <see cref="Factor"/>).</summary>
    public double? LowFreqFactor { get; init; }

    /// <summary>Llama 3: <c>high_freq_factor</c> (wavelengths below original/high are kept); must exceed <see cref="LowFreqFactor"/>.</summary>
    public double? HighFreqFactor { get; init; }

    /// <summary>Plain RoPE.</summary>
    /// <param name="theta">Base period.</param>
    public static RopeParameters Default(double theta = 10000) => Checked(new RopeParameters { Type = RopeType.Default, Theta = theta });

    /// <summary>Position Interpolation (HF <c>linear</c>): positions divided by <paramref name="factor"/>.</summary>
    /// <param name="factor">Interpolation factor, at least 1 (e.g. 2048 -> 8192 is 4).</param>
    /// <param name="theta">Base period.</param>
    public static RopeParameters Linear(double factor, double theta = 10000)
        => Checked(new RopeParameters { Type = RopeType.Linear, Factor = factor, Theta = theta });

    /// <summary>Dynamic NTK scaling (HF <c>dynamic</c>).</summary>
    /// <param name="factor">Scale factor, at least 1.</param>
    /// <param name="theta">Base period.</param>
    public static RopeParameters Dynamic(double factor, double theta = 10000)
        => Checked(new RopeParameters { Type = RopeType.Dynamic, Factor = factor, Theta = theta });

    /// <summary>YaRN (HF <c>yarn</c>).</summary>
    /// <param name="factor">Context extension factor, at least 1.</param>
    /// <param name="originalMaxPositionEmbeddings">Pretraining window.</param>
    /// <param name="theta">Base period.</param>
    /// <param name="betaFast">Optional <c>beta_fast</c> (32).</param>
    /// <param name="betaSlow">Optional <c>beta_slow</c> (1).</param>
    /// <param name="attentionFactor">Optional explicit attention factor (default <c>0.1 ln(factor) + 1</c>).</param>
    public static RopeParameters Yarn(double factor, int originalMaxPositionEmbeddings, double theta = 10000,
        double? betaFast = null, double? betaSlow = null, double? attentionFactor = null)
        => Checked(new RopeParameters
        {
            Type = RopeType.Yarn, Factor = factor, OriginalMaxPositionEmbeddings = originalMaxPositionEmbeddings, Theta = theta,
            BetaFast = betaFast, BetaSlow = betaSlow, AttentionFactor = attentionFactor,
        });

    /// <summary>LongRoPE (HF <c>longrope</c>).</summary>
    /// <param name="shortFactor">rotaryDim/2 factors used within the original window.</param>
    /// <param name="longFactor">rotaryDim/2 factors used past it.</param>
    /// <param name="originalMaxPositionEmbeddings">Pretraining window.</param>
    /// <param name="factor">Extension factor for the default attention factor; HF's default is max_position_embeddings / original.</param>
    /// <param name="theta">Base period.</param>
    public static RopeParameters LongRope(IReadOnlyList<double> shortFactor, IReadOnlyList<double> longFactor,
        int originalMaxPositionEmbeddings, double factor, double theta = 10000)
        => Checked(new RopeParameters
        {
            Type = RopeType.LongRope, ShortFactor = shortFactor, LongFactor = longFactor,
            OriginalMaxPositionEmbeddings = originalMaxPositionEmbeddings, Factor = factor, Theta = theta,
        });

    /// <summary>Llama 3.1 scaling (HF <c>llama3</c>; Llama 3.1 uses factor 8, low 1, high 4, original 8192, theta 500000).</summary>
    /// <param name="factor">Scale factor, at least 1.</param>
    /// <param name="lowFreqFactor">low_freq_factor.</param>
    /// <param name="highFreqFactor">high_freq_factor, greater than <paramref name="lowFreqFactor"/>.</param>
    /// <param name="originalMaxPositionEmbeddings">Pretraining window.</param>
    /// <param name="theta">Base period.</param>
    public static RopeParameters Llama3(double factor, double lowFreqFactor, double highFreqFactor,
        int originalMaxPositionEmbeddings, double theta = 500000)
        => Checked(new RopeParameters
        {
            Type = RopeType.Llama3, Factor = factor, LowFreqFactor = lowFreqFactor, HighFreqFactor = highFreqFactor,
            OriginalMaxPositionEmbeddings = originalMaxPositionEmbeddings, Theta = theta,
        });

    /// <summary>
    /// Number of leading head dimensions that are rotated: <c>(int)(headDim * PartialRotaryFactor)</c>, as HF computes it.
    /// </summary>
    /// <param name="headDim">Head dimension.</param>
    public int RotaryDim(int headDim) => (int)(headDim * PartialRotaryFactor);

    /// <summary>
    /// The pretraining window in force for YaRN, LongRoPE and Llama 3: <see cref="OriginalMaxPositionEmbeddings"/>,
    /// or <paramref name="maxPositionEmbeddings"/> when unset.
    /// </summary>
    /// <param name="maxPositionEmbeddings">The model's <c>max_position_embeddings</c>.</param>
    public int OriginalWindow(int maxPositionEmbeddings) => OriginalMaxPositionEmbeddings ?? maxPositionEmbeddings;

    /// <summary>
    /// Checks every field against the rope type and the model shape; throws an <see cref="ArgumentException"/> whose
    /// <see cref="ArgumentException.ParamName"/> is the offending property (or <c>headDim</c> /
    /// <c>maxPositionEmbeddings</c>) and whose message gives the value and what was expected.
    /// </summary>
    /// <param name="headDim">Attention head dimension; the rotated part (<see cref="RotaryDim"/>) must be even and positive.</param>
    /// <param name="maxPositionEmbeddings">The model's <c>max_position_embeddings</c>, positive.</param>
    public void Validate(int headDim, int maxPositionEmbeddings)
    {
        if (headDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"headDim must be positive; got {headDim}.");
        if (maxPositionEmbeddings <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxPositionEmbeddings), maxPositionEmbeddings,
                $"maxPositionEmbeddings must be positive; got {maxPositionEmbeddings}.");
        ValidateFields();
        int rotaryDim = RotaryDim(headDim);
        if (rotaryDim <= 0 || rotaryDim % 2 != 0)
        {
            string what = PartialRotaryFactor == 1 ? $"headDim {headDim}" : $"headDim {headDim} x PartialRotaryFactor {F(PartialRotaryFactor)} = {rotaryDim}";
            throw new ArgumentException($"The rotated dimension must be even and positive (dimensions rotate in pairs); {what} is not.", nameof(headDim));
        }
        if (Type == RopeType.LongRope)
        {
            CheckFactorList(ShortFactor, nameof(ShortFactor), rotaryDim / 2);
            CheckFactorList(LongFactor, nameof(LongFactor), rotaryDim / 2);
        }
    }

    /// <summary>The checks that need no model shape (all of <see cref="Validate"/> but the head dimension and list lengths).</summary>
    internal void ValidateFields()
    {
        if (!Enum.IsDefined(Type))
            throw new ArgumentOutOfRangeException(nameof(Type), Type, $"Type must be one of {string.Join(", ", Enum.GetNames<RopeType>())}; got {(int)Type}.");
        if (!(Theta > 0) || !double.IsFinite(Theta))
            throw new ArgumentOutOfRangeException(nameof(Theta), Theta, $"Theta must be a positive finite number; got {F(Theta)}.");
        if (!(PartialRotaryFactor > 0 && PartialRotaryFactor <= 1))
            throw new ArgumentOutOfRangeException(nameof(PartialRotaryFactor), PartialRotaryFactor,
                $"PartialRotaryFactor must be in (0, 1]; got {F(PartialRotaryFactor)}.");

        if (Type == RopeType.Default)
        {
            if (Factor != 1)
                throw new ArgumentException($"Factor is not used by rope type Default (it would be ignored); got {F(Factor)}. Use Linear, Dynamic, Yarn, LongRope or Llama3 to scale.", nameof(Factor));
        }
        else if (!(Factor >= 1) || !double.IsFinite(Factor))
        {
            throw new ArgumentOutOfRangeException(nameof(Factor), Factor, $"Factor must be a finite number >= 1 for rope type {Type}; got {F(Factor)}.");
        }

        bool usesOriginal = Type is RopeType.Yarn or RopeType.LongRope or RopeType.Llama3;
        RejectUnused(OriginalMaxPositionEmbeddings, nameof(OriginalMaxPositionEmbeddings), usesOriginal,
            Type == RopeType.Dynamic ? " (dynamic NTK scales from max_position_embeddings, as HF does)" : "");
        if (OriginalMaxPositionEmbeddings is int orig && orig <= 0)
            throw new ArgumentOutOfRangeException(nameof(OriginalMaxPositionEmbeddings), orig, $"OriginalMaxPositionEmbeddings must be positive; got {orig}.");

        RejectUnused(AttentionFactor, nameof(AttentionFactor), Type is RopeType.Yarn or RopeType.LongRope);
        PositiveIfSet(AttentionFactor, nameof(AttentionFactor));

        bool yarn = Type == RopeType.Yarn;
        RejectUnused(BetaFast, nameof(BetaFast), yarn);
        RejectUnused(BetaSlow, nameof(BetaSlow), yarn);
        RejectUnused(Mscale, nameof(Mscale), yarn);
        RejectUnused(MscaleAllDim, nameof(MscaleAllDim), yarn);
        RejectUnused(Truncate, nameof(Truncate), yarn);
        PositiveIfSet(BetaFast, nameof(BetaFast));
        PositiveIfSet(BetaSlow, nameof(BetaSlow));
        PositiveIfSet(Mscale, nameof(Mscale));
        PositiveIfSet(MscaleAllDim, nameof(MscaleAllDim));
        if (yarn && (BetaFast ?? 32) < (BetaSlow ?? 1))
            throw new ArgumentException($"BetaFast ({F(BetaFast ?? 32)}) must be at least BetaSlow ({F(BetaSlow ?? 1)}).", nameof(BetaFast));

        bool longRope = Type == RopeType.LongRope;
        RejectUnused(ShortFactor, nameof(ShortFactor), longRope);
        RejectUnused(LongFactor, nameof(LongFactor), longRope);
        if (longRope)
        {
            if (ShortFactor is null) throw new ArgumentException("ShortFactor is required for rope type LongRope (short_factor).", nameof(ShortFactor));
            if (LongFactor is null) throw new ArgumentException("LongFactor is required for rope type LongRope (long_factor).", nameof(LongFactor));
        }

        bool llama3 = Type == RopeType.Llama3;
        RejectUnused(LowFreqFactor, nameof(LowFreqFactor), llama3);
        RejectUnused(HighFreqFactor, nameof(HighFreqFactor), llama3);
        if (llama3)
        {
            if (LowFreqFactor is not double low) throw new ArgumentException("LowFreqFactor is required for rope type Llama3 (low_freq_factor).", nameof(LowFreqFactor));
            if (HighFreqFactor is not double high) throw new ArgumentException("HighFreqFactor is required for rope type Llama3 (high_freq_factor).", nameof(HighFreqFactor));
            PositiveIfSet(LowFreqFactor, nameof(LowFreqFactor));
            PositiveIfSet(HighFreqFactor, nameof(HighFreqFactor));
            if (!(high > low))
                throw new ArgumentException($"HighFreqFactor ({F(high)}) must be greater than LowFreqFactor ({F(low)}).", nameof(HighFreqFactor));
        }
    }

    /// <inheritdoc />
    public bool Equals(RopeParameters? other)
        => other is not null && Type == other.Type && Theta.Equals(other.Theta) && Factor.Equals(other.Factor)
           && OriginalMaxPositionEmbeddings == other.OriginalMaxPositionEmbeddings && PartialRotaryFactor.Equals(other.PartialRotaryFactor)
           && Nullable.Equals(AttentionFactor, other.AttentionFactor) && Nullable.Equals(BetaFast, other.BetaFast)
           && Nullable.Equals(BetaSlow, other.BetaSlow) && Nullable.Equals(Mscale, other.Mscale)
           && Nullable.Equals(MscaleAllDim, other.MscaleAllDim) && Truncate == other.Truncate
           && SameList(ShortFactor, other.ShortFactor) && SameList(LongFactor, other.LongFactor)
           && Nullable.Equals(LowFreqFactor, other.LowFreqFactor) && Nullable.Equals(HighFreqFactor, other.HighFreqFactor);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Type); h.Add(Theta); h.Add(Factor); h.Add(OriginalMaxPositionEmbeddings); h.Add(PartialRotaryFactor);
        h.Add(AttentionFactor); h.Add(BetaFast); h.Add(BetaSlow); h.Add(Mscale); h.Add(MscaleAllDim); h.Add(Truncate);
        h.Add(LowFreqFactor); h.Add(HighFreqFactor);
        foreach (double v in ShortFactor ?? []) h.Add(v);
        foreach (double v in LongFactor ?? []) h.Add(v);
        return h.ToHashCode();
    }

    private static bool SameList(IReadOnlyList<double>? a, IReadOnlyList<double>? b)
        => a is null ? b is null : b is not null && a.SequenceEqual(b);

    private static RopeParameters Checked(RopeParameters p)
    {
        p.ValidateFields();
        return p;
    }

    private void RejectUnused<T>(T? value, string name, bool used, string why = "")
    {
        if (!used && value is not null)
            throw new ArgumentException($"{name} is not used by rope type {Type}{why} and would be ignored; got {Show(value)}. Leave it unset.", name);
    }

    private static void PositiveIfSet(double? value, string name)
    {
        if (value is double v && (!(v > 0) || !double.IsFinite(v)))
            throw new ArgumentOutOfRangeException(name, v, $"{name} must be a positive finite number; got {F(v)}.");
    }

    private static void CheckFactorList(IReadOnlyList<double>? list, string name, int expected)
    {
        if (list is null) throw new ArgumentException($"{name} is required for rope type LongRope.", name);
        if (list.Count != expected)
            throw new ArgumentException($"{name} must hold rotaryDim/2 = {expected} values (one per frequency); got {list.Count}.", name);
        for (int i = 0; i < list.Count; i++)
            if (!(list[i] > 0) || !double.IsFinite(list[i]))
                throw new ArgumentOutOfRangeException(name, list[i], $"{name}[{i}] must be a positive finite number; got {F(list[i])}.");
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Show(object? value) => value switch
    {
        IReadOnlyList<double> l => $"[{string.Join(", ", l.Select(F))}]",
        double d => F(d),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null",
    };
}
