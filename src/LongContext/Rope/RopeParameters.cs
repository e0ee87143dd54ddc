namespace LongContext.Rope;

/// <summary>
/// The rotary embedding configuration, field for field HF transformers' <c>rope_parameters</c> (read and written as
/// JSON by <c>LongContext.IO.HfRopeConfig</c>; which keys each type takes is described once, in the per-type table
/// that reading, writing and validation share). Each field is checked as it is set (an
/// <see cref="ArgumentOutOfRangeException"/> names it). What relates fields (which fields <see cref="Type"/> takes,
/// <c>BetaFast &gt;= BetaSlow</c>, ...) is checked by the factories, and with the model shape by
/// <see cref="Validate"/>, which <see cref="RotaryEmbeddingOptions"/>, <see cref="RopeFrequencyBuilder"/> and the
/// config readers run. Fields that a type does not use must stay unset (<see langword="null"/>, or 1 for
/// <see cref="Factor"/>): they are rejected, not ignored. Equality compares every field, factor lists by their values.
/// </summary>
public sealed record RopeParameters
{
    private readonly RopeType _type;
    private readonly double _theta = RopeKeys.DefaultTheta, _factor = 1, _partialRotaryFactor = 1;
    private readonly int? _originalMaxPositionEmbeddings;
    private readonly double? _attentionFactor, _betaFast, _betaSlow, _mscale, _mscaleAllDim, _lowFreqFactor, _highFreqFactor;
    private readonly bool? _truncate;
    private readonly IReadOnlyList<double>? _shortFactor, _longFactor;

    /// <summary>The RoPE variant (<c>rope_type</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="RopeType"/>.</exception>
    public RopeType Type
    {
        get => _type;
        init => _type = Enum.IsDefined(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(Type), value, $"{nameof(Type)} must be one of {string.Join(", ", Enum.GetNames<RopeType>())}; got {(int)value}.");
    }

    /// <summary>Base period <c>rope_theta</c>, positive (10000 unless set).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double Theta { get => _theta; init => _theta = RopeKeys.Theta.Checked(value); }

    /// <summary>
    /// Scaling factor (<c>factor</c>), finite and at least 1. Linear: positions are divided by it. Dynamic: the NTK
    /// scale reached at <c>factor</c> x the original window. YaRN / Llama 3: the interpolation factor. LongRoPE: only
    /// sets the default attention factor. HF's yarn and longrope use <c>max_position_embeddings /
    /// original_max_position_embeddings</c> when the config has none (<c>HfRopeConfig.Read</c> fills that in; the
    /// factories take it explicitly). Not used by <see cref="RopeType.Default"/> (must stay 1).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is below 1 or not finite.</exception>
    public double Factor { get => _factor; init => _factor = RopeKeys.Factor.Checked(value); }

    /// <summary>
    /// Pretraining window (<c>original_max_position_embeddings</c>), positive, for YaRN, LongRoPE and Llama 3; when
    /// <see langword="null"/> the builders use <c>max_position_embeddings</c>, as HF's standardization does.
    /// Not used by Default, Linear or Dynamic (dynamic scales from <c>max_position_embeddings</c>, as HF does).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is zero or negative.</exception>
    public int? OriginalMaxPositionEmbeddings
    {
        get => _originalMaxPositionEmbeddings;
        init => _originalMaxPositionEmbeddings = RopeKeys.OriginalMaxPositionEmbeddings.Checked(value);
    }

    /// <summary>Fraction of the head dimension that is rotated (<c>partial_rotary_factor</c>), in (0, 1]; the rotated part is <c>(int)(headDim * f)</c> leading dims.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside (0, 1].</exception>
    public double PartialRotaryFactor { get => _partialRotaryFactor; init => _partialRotaryFactor = RopeKeys.PartialRotaryFactor.Checked(value); }

    /// <summary>YaRN / LongRoPE: factor cos and sin carry (<c>attention_factor</c>), positive; when <see langword="null"/> it is derived from <see cref="Factor"/> as HF does.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double? AttentionFactor { get => _attentionFactor; init => _attentionFactor = RopeKeys.AttentionFactor.Checked(value); }

    /// <summary>YaRN: rotations bounding extrapolation (<c>beta_fast</c>, positive; 32 when <see langword="null"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double? BetaFast { get => _betaFast; init => _betaFast = RopeKeys.BetaFast.Checked(value); }

    /// <summary>YaRN: rotations bounding interpolation (<c>beta_slow</c>, positive; 1 when <see langword="null"/>); at most <see cref="BetaFast"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double? BetaSlow { get => _betaSlow; init => _betaSlow = RopeKeys.BetaSlow.Checked(value); }

    /// <summary>
    /// YaRN (DeepSeek): <c>mscale</c>, positive; with <see cref="MscaleAllDim"/> the attention factor is
    /// <c>m(factor, mscale) / m(factor, mscale_all_dim)</c>. HF uses the pair only when both are set (and nonzero).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double? Mscale { get => _mscale; init => _mscale = RopeKeys.Mscale.Checked(value); }

    /// <summary>YaRN (DeepSeek): <c>mscale_all_dim</c>, positive; see <see cref="Mscale"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double? MscaleAllDim { get => _mscaleAllDim; init => _mscaleAllDim = RopeKeys.MscaleAllDim.Checked(value); }

    /// <summary>YaRN: round the correction range to whole dimensions (<c>truncate</c>, true when <see langword="null"/>).</summary>
    public bool? Truncate { get => _truncate; init => _truncate = value; }

    /// <summary>LongRoPE: per-frequency factors for sequences within the original window (<c>short_factor</c>, rotaryDim/2 positive values; copied).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An entry is not a positive finite number.</exception>
    public IReadOnlyList<double>? ShortFactor { get => _shortFactor; init => _shortFactor = ValueList<double>.CopyOf(RopeKeys.ShortFactor.Checked(value)); }

    /// <summary>LongRoPE: per-frequency factors for sequences past the original window (<c>long_factor</c>, rotaryDim/2 positive values; copied).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An entry is not a positive finite number.</exception>
    public IReadOnlyList<double>? LongFactor { get => _longFactor; init => _longFactor = ValueList<double>.CopyOf(RopeKeys.LongFactor.Checked(value)); }

    /// <summary>Llama 3: <c>low_freq_factor</c>, positive (wavelengths above original/low are divided by <see cref="Factor"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double? LowFreqFactor { get => _lowFreqFactor; init => _lowFreqFactor = RopeKeys.LowFreqFactor.Checked(value); }

    /// <summary>Llama 3: <c>high_freq_factor</c>, positive (wavelengths below original/high are kept); must exceed <see cref="LowFreqFactor"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double? HighFreqFactor { get => _highFreqFactor; init => _highFreqFactor = RopeKeys.HighFreqFactor.Checked(value); }

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
    /// Checks what the init accessors cannot: which fields <see cref="Type"/> takes (fields it does not use must be
    /// unset, required ones set), the relations between fields (<c>BetaFast &gt;= BetaSlow</c>, <c>HighFreqFactor &gt;
    /// LowFreqFactor</c>), and the model shape: the rotated dimension must be even and positive and LongRoPE's lists
    /// must hold rotaryDim/2 values. Throws an <see cref="ArgumentException"/> whose
    /// <see cref="ArgumentException.ParamName"/> is the offending property (or <c>headDim</c> /
    /// <c>maxPositionEmbeddings</c>) and whose message gives the value and what was expected.
    /// </summary>
    /// <param name="headDim">Attention head dimension, positive.</param>
    /// <param name="maxPositionEmbeddings">The model's <c>max_position_embeddings</c>, positive.</param>
    public void Validate(int headDim, int maxPositionEmbeddings)
    {
        if (headDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"headDim must be positive; got {headDim}.");
        if (maxPositionEmbeddings <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxPositionEmbeddings), maxPositionEmbeddings,
                $"maxPositionEmbeddings must be positive; got {maxPositionEmbeddings}.");
        ValidateKeys();
        int rotaryDim = RotaryDim(headDim);
        if (rotaryDim <= 0 || rotaryDim % 2 != 0)
        {
            string what = PartialRotaryFactor == 1 ? $"headDim {headDim}"
                : $"headDim {headDim} x PartialRotaryFactor {RopeKey.Show(PartialRotaryFactor)} = {rotaryDim}";
            throw new ArgumentException($"The rotated dimension must be even and positive (dimensions rotate in pairs); {what} is not.", nameof(headDim));
        }
        foreach (RopeKey key in RopeKeys.For(Type).Keys)
        {
            if (key.Kind == RopeValueKind.NumberList && key.Value(this) is IReadOnlyList<double> list && list.Count != rotaryDim / 2)
                throw new ArgumentException($"{key.Property} must hold rotaryDim/2 = {rotaryDim / 2} values (one per frequency); got {list.Count}.", key.Property);
        }
    }

    /// <summary>The checks of <see cref="Validate"/> that need no model shape: the type's keys and the relations between fields.</summary>
    internal void ValidateKeys()
    {
        RopeTypeKeys keys = RopeKeys.For(Type);
        foreach (RopeKey key in RopeKeys.All)
        {
            if (keys.Uses(key) || !key.IsSet(this)) continue;
            string users = string.Join(", ", RopeKeys.TypesUsing(key));
            throw new ArgumentException(
                $"{key.Property} is not used by rope type {Type} (it would be ignored); got {RopeKey.Show(key.Value(this))}. Leave it unset, or use a type that takes it: {users}.",
                key.Property);
        }
        foreach (RopeKey key in keys.Required)
        {
            if (key.Value(this) is null)
                throw new ArgumentException($"{key.Property} is required for rope type {Type} ({key.HfName}).", key.Property);
        }
        keys.Relations?.Invoke(this);
    }

    private static RopeParameters Checked(RopeParameters p)
    {
        p.ValidateKeys();
        return p;
    }
}
