using System.Text.RegularExpressions;

namespace LongContext.Lora;

/// <summary>
/// LoRA hyper-parameters for one adapter, validated as they are set. Mirrors peft's <c>LoraConfig</c> fields that
/// change the math: rank <c>r</c>, <c>lora_alpha</c>, <c>lora_dropout</c>, <c>use_rslora</c>, <c>bias</c>,
/// <c>init_lora_weights</c>, <c>target_modules</c> and <c>modules_to_save</c>, plus peft's
/// <c>autocast_adapter_dtype</c> (an argument of <c>get_peft_model</c> there).
/// </summary>
/// <remarks>Every property is checked in its <c>init</c> accessor: an invalid value never makes an options object.</remarks>
public sealed record LoraOptions
{
    /// <summary>Target shorthand for every Linear layer except the output head <c>lm_head</c> (peft's <c>all-linear</c>).</summary>
    public const string AllLinear = "all-linear";

    private readonly int _rank = 8;
    private readonly double _alpha = 8;
    private readonly double _dropout;
    private readonly IReadOnlyList<string>? _targetModules;
    private readonly string? _targetRegex;
    private readonly IReadOnlyList<string> _modulesToSave = [];
    private readonly LoraBias _bias;
    private readonly LoraInit _init;

    /// <summary>Rank r of the update B·A; positive. Default 8.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is zero or negative.</exception>
    public int Rank { get => _rank; init => _rank = Guard.Positive(value, nameof(Rank)); }

    /// <summary>lora_alpha; positive and finite. Default 8.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a positive finite number.</exception>
    public double Alpha { get => _alpha; init => _alpha = Guard.Positive(value, nameof(Alpha)); }

    /// <summary>Dropout probability applied to the LoRA branch's input during training, in [0, 1). Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside [0, 1).</exception>
    public double Dropout { get => _dropout; init => _dropout = Guard.DropoutProbability(value, nameof(Dropout)); }

    /// <summary>rsLoRA: scale by alpha/sqrt(r) instead of alpha/r.</summary>
    public bool UseRsLora { get; init; }

    /// <summary>Which biases train and are saved with the adapter.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="LoraBias"/>.</exception>
    public LoraBias Bias
    {
        get => _bias;
        init => _bias = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Bias), value, $"{nameof(Bias)} must be None, All or LoraOnly; got {value}.");
    }

    /// <summary>Initialisation of new A and B matrices (peft's <c>init_lora_weights</c>). Default <see cref="LoraInit.KaimingUniform"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="LoraInit"/>.</exception>
    public LoraInit Init
    {
        get => _init;
        init => _init = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Init), value, $"{nameof(Init)} must be KaimingUniform, Gaussian or Random; got {value}.");
    }

    /// <summary>
    /// Keep adapters in float32 over a float16 or bfloat16 base (peft's default <c>autocast_adapter_dtype=True</c>):
    /// A and B are float32, the LoRA branch runs in float32 and its sum with the base output is cast to the base
    /// output's dtype, so optimizer updates far below a half-precision ulp are not rounded away. Other base dtypes
    /// (float32, float64) are kept as they are. False: A and B take the base weight's dtype (for a 4-bit base, its
    /// compute dtype). Default true.
    /// </summary>
    public bool AutocastAdapterDtype { get; init; } = true;

    /// <summary>peft's default targets, <c>["q_proj", "v_proj"]</c>: what an unset <see cref="TargetModules"/> means outside a recipe.</summary>
    public static IReadOnlyList<string> PeftDefaultTargetModules { get; } = ["q_proj", "v_proj"];

    /// <summary>
    /// Module names to wrap: a name matches a module whose full name equals it or ends with <c>"." + name</c>
    /// (peft's rule), or the single entry <see cref="AllLinear"/>. Leave it null when <see cref="TargetRegex"/> is set
    /// (peft's <c>target_modules</c> is one or the other; <see cref="LoraInjector.Inject"/> refuses both).
    /// Default null: the caller's default, <see cref="PeftDefaultTargetModules"/> (q_proj, v_proj, as peft) for
    /// <see cref="LoraInjector.Inject"/>, LongLoRA's q, k, v, o in the LongLoRA recipe; an explicit list, the same
    /// one included, is always used as given (see <see cref="ResolvedTargetModules"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The list is empty, holds an empty name, or holds <see cref="AllLinear"/>
    /// beside other names.</exception>
    public IReadOnlyList<string>? TargetModules
    {
        get => _targetModules;
        init
        {
            if (value is null)
            {
                _targetModules = null;
                return;
            }
            if (value.Count == 0)
                throw new ArgumentException($"{nameof(TargetModules)} must name at least one module; got an empty list (null takes the default targets).", nameof(TargetModules));
            if (value.Any(string.IsNullOrWhiteSpace))
                throw new ArgumentException($"{nameof(TargetModules)} must not hold empty names; got [{string.Join(", ", value.Select(v => $"'{v}'"))}].", nameof(TargetModules));
            if (value.Count > 1 && value.Contains(AllLinear))
                throw new ArgumentException($"{nameof(TargetModules)} '{AllLinear}' must be the only entry; got [{string.Join(", ", value)}].", nameof(TargetModules));
            _targetModules = value.ToArray();
        }
    }

    /// <summary>The targets in force: <see cref="TargetModules"/>, or <see cref="PeftDefaultTargetModules"/> when it is unset.</summary>
    public IReadOnlyList<string> ResolvedTargetModules => _targetModules ?? PeftDefaultTargetModules;

    /// <summary>
    /// When set, a module is wrapped if its full name matches this regex entirely (peft's string
    /// <c>target_modules</c>). Setting it and <see cref="TargetModules"/> both is a conflict <see cref="LoraInjector.Inject"/> refuses.
    /// </summary>
    /// <exception cref="ArgumentException">The pattern is not a valid regex.</exception>
    public string? TargetRegex
    {
        get => _targetRegex;
        init
        {
            if (value is not null)
            {
                try { _ = new Regex(value); }
                catch (ArgumentException e) { throw new ArgumentException($"{nameof(TargetRegex)} '{value}' is not a valid regex: {e.Message}", nameof(TargetRegex), e); }
            }
            _targetRegex = value;
        }
    }

    /// <summary>
    /// Modules trained in full and saved with the adapter (peft's <c>modules_to_save</c>; LongLoRA's
    /// <c>embed,norm</c>). Matching as in <see cref="LoraInjector.MarkTrainable"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The list is null, or holds an empty name.</exception>
    public IReadOnlyList<string> ModulesToSave
    {
        get => _modulesToSave;
        init
        {
            if (value is null) throw new ArgumentNullException(nameof(ModulesToSave));
            if (value.Any(string.IsNullOrWhiteSpace))
                throw new ArgumentException($"{nameof(ModulesToSave)} must not hold empty names.", nameof(ModulesToSave));
            _modulesToSave = value.ToArray();
        }
    }

    /// <summary>The factor s in <c>y = W x + s · B A x</c>: alpha/r, or alpha/sqrt(r) with rsLoRA.</summary>
    public double Scaling => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>Refuses <see cref="TargetModules"/> and <see cref="TargetRegex"/> both set (one of them would be ignored).</summary>
    /// <param name="paramName">The parameter the options came in as, for the exception.</param>
    internal void CheckSettingsUsed(string paramName)
    {
        if (_targetRegex is not null && _targetModules is not null)
            throw new ArgumentException(
                $"{nameof(TargetModules)} [{string.Join(", ", _targetModules)}] and {nameof(TargetRegex)} '{_targetRegex}' are both set, and a module is chosen by one rule " +
                $"(peft's target_modules is a list or a regex); leave one of them null.", paramName);
    }
}
