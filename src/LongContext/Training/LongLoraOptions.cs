using LongContext.Attention;
using LongContext.Lora;
using LongContext.Quantization;

namespace LongContext.Training;

/// <summary>
/// Settings of the LongLoRA recipe (Chen et al., 2023): extend a model to <see cref="TargetContextLength"/> with
/// Position Interpolation, train with shifted sparse attention (S2-Attn) and LoRA plus fully trainable embeddings
/// and norms, evaluate with full attention. With <see cref="Quantization"/> set, the base is 4-bit (LongQLoRA style).
/// </summary>
/// <remarks>
/// <para>One field per concept, and the recipe never overrides a value you set. Every property is checked in its
/// <c>init</c> accessor; combinations are checked by <see cref="ResolveLora"/> (which the recipe calls first) and
/// a conflict is an error that names both values.</para>
/// <para>LongLoRA's LoRA defaults live in one place, <see cref="DefaultLora"/>: r 8, alpha 16, no dropout, on
/// q, k, v, o (every linear layer but <c>lm_head</c> over a 4-bit base). A <see cref="Lora"/> you set is used as it
/// stands, every field of it; only targets left unset (<see cref="LoraOptions.TargetModules"/> null and no
/// <see cref="LoraOptions.TargetRegex"/>) take LongLoRA's targets. An explicit list, peft's q_proj, v_proj
/// included, is honoured.</para>
/// </remarks>
public sealed record LongLoraOptions
{
    private readonly int _targetContextLength = 8192;
    private readonly IReadOnlyList<string> _trainableExtras = ["embed", "norm"];
    private readonly AttentionOptions? _s2 = DefaultS2;

    /// <summary>LongLoRA's S2-Attn in training: shifted sparse attention with group size N/4, no-wrap, no dropout.</summary>
    public static AttentionOptions DefaultS2 { get; } = new() { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.25 };

    /// <summary>
    /// LongLoRA's LoRA settings (its <c>fine-tune.py</c>): r 8, alpha 16, dropout 0, no bias, on q, k, v, o; over a
    /// 4-bit base (<paramref name="quantized"/>) on every linear layer but <c>lm_head</c>, as QLoRA and LongQLoRA do.
    /// <see cref="LoraOptions.ModulesToSave"/> stays empty: the recipe's extras are <see cref="TrainableExtras"/>.
    /// </summary>
    /// <param name="quantized">True for a 4-bit base.</param>
    public static LoraOptions DefaultLora(bool quantized = false) => new()
    {
        Rank = 8,
        Alpha = 16,
        TargetModules = quantized ? [LoraOptions.AllLinear] : ["q_proj", "k_proj", "v_proj", "o_proj"],
    };

    /// <summary>
    /// Context length to train and run at, positive. Default 8192. With <see cref="PositionInterpolation"/> the
    /// linear rope factor becomes <c>ceil(target / original)</c> (see <c>LongLora.ApplyPositionInterpolation</c>);
    /// without it the context is declared this long and the rope left as it is (<c>LongLora.ApplyExtrapolation</c>).
    /// </summary>
    public int TargetContextLength { get => _targetContextLength; init => _targetContextLength = Guard.Positive(value, nameof(TargetContextLength)); }

    /// <summary>
    /// Apply linear Position Interpolation for <see cref="TargetContextLength"/> (default true). False keeps the
    /// rope as loaded and trains at the target length anyway: extension by extrapolation, the PI paper's baseline.
    /// </summary>
    public bool PositionInterpolation { get; init; } = true;

    /// <summary>
    /// Attention in training mode: S2-Attn settings whose <see cref="AttentionOptions.Mode"/> is
    /// <see cref="AttentionMode.ShiftedSparse"/> (default <see cref="DefaultS2"/>), or null to train with full causal
    /// attention. Evaluation always uses full causal attention. Its dropout must equal the model's
    /// <c>attention_dropout</c> (a different value is a conflict the recipe reports).
    /// </summary>
    /// <exception cref="ArgumentException">The options' mode is not ShiftedSparse.</exception>
    public AttentionOptions? S2
    {
        get => _s2;
        init => _s2 = value is null || value.Mode == AttentionMode.ShiftedSparse ? value
            : throw new ArgumentException($"{nameof(S2)}.Mode must be ShiftedSparse (or {nameof(S2)} null for full attention in training); got {value.Mode}.", nameof(S2));
    }

    /// <summary>LoRA settings; null takes <see cref="DefaultLora"/> for the chosen base. Used as set (see remarks).</summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>
    /// Parameters trained in full and saved with the adapter (peft <c>modules_to_save</c>), selected as LongLoRA's
    /// <c>trainable_params</c>: a module name ending in, or a parameter-holding module whose name contains, the
    /// entry. Default <c>["embed", "norm"]</c>; empty for LoRA only. This is the recipe's one field for the extras:
    /// <see cref="Lora"/>'s <see cref="LoraOptions.ModulesToSave"/> must be left empty or say the same.
    /// </summary>
    /// <exception cref="ArgumentException">The list is null or holds an empty name.</exception>
    public IReadOnlyList<string> TrainableExtras
    {
        get => _trainableExtras;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(TrainableExtras));
            if (value.Any(string.IsNullOrWhiteSpace))
                throw new ArgumentException($"{nameof(TrainableExtras)} must not hold empty names; got [{string.Join(", ", value.Select(v => $"'{v}'"))}].", nameof(TrainableExtras));
            _trainableExtras = value.ToArray();
        }
    }

    /// <summary>Recompute each decoder layer in backward instead of storing its activations. Default true.</summary>
    public bool GradientCheckpointing { get; init; } = true;

    /// <summary>4-bit quantization of the base linear layers before LoRA (QLoRA); null keeps them dense.</summary>
    public QuantizationOptions? Quantization { get; init; }

    /// <summary>
    /// The LoRA options the recipe injects: <see cref="Lora"/> (or <see cref="DefaultLora"/>) with unset targets
    /// (<see cref="LoraOptions.TargetModules"/> null, no regex) resolved to <see cref="DefaultLora"/>'s and
    /// <see cref="LoraOptions.ModulesToSave"/> = <see cref="TrainableExtras"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><see cref="Lora"/>'s ModulesToSave is set and differs from
    /// <see cref="TrainableExtras"/> (both named), or it sets both TargetModules and TargetRegex.</exception>
    public LoraOptions ResolveLora()
    {
        LoraOptions defaults = DefaultLora(Quantization is not null);
        LoraOptions lora = Lora ?? defaults;
        lora.CheckSettingsUsed(nameof(Lora));
        if (lora.TargetModules is null && lora.TargetRegex is null) lora = lora with { TargetModules = defaults.TargetModules };
        if (lora.ModulesToSave.Count > 0 && !lora.ModulesToSave.SequenceEqual(TrainableExtras))
            throw new ArgumentException(
                $"{nameof(Lora)}.ModulesToSave [{string.Join(", ", lora.ModulesToSave)}] conflicts with {nameof(TrainableExtras)} [{string.Join(", ", TrainableExtras)}]: the recipe's fully trained modules are set by {nameof(TrainableExtras)} alone; leave {nameof(Lora)}.ModulesToSave empty.",
                nameof(Lora));
        return lora with { ModulesToSave = TrainableExtras };
    }
}
