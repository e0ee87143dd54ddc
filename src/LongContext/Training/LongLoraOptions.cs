using LongContext.Attention;
using LongContext.Lora;
using LongContext.Quantization;

namespace LongContext.Training;

/// <summary>
/// Settings of the LongLoRA recipe (Chen et al., 2023): extend a model to <see cref="TargetContextLength"/> with
/// Position Interpolation, train with shifted sparse attention (S2-Attn) and LoRA plus fully trainable embeddings
/// and norms, evaluate with full attention. With <see cref="Quantization"/> set, the base is 4-bit (LongQLoRA style).
/// </summary>
public sealed record LongLoraOptions
{
    private readonly int _targetContextLength = 8192;
    private readonly IReadOnlyList<string> _trainableExtras = ["embed", "norm"];
    private readonly AttentionOptions _s2 = new() { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.25 };

    /// <summary>Context length to train and run at; the PI factor is <c>ceil(target / original)</c>. Default 8192.</summary>
    public int TargetContextLength { get => _targetContextLength; init => _targetContextLength = Guard.Positive(value, nameof(TargetContextLength)); }

    /// <summary>
    /// LoRA settings; null takes LongLoRA's (r 8, alpha 16, no dropout) on q, k, v, o — or on every linear layer but
    /// <c>lm_head</c> when <see cref="Quantization"/> is set (QLoRA).
    /// </summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>
    /// Parameters trained in full and saved with the adapter (peft <c>modules_to_save</c>), selected as LongLoRA's
    /// <c>trainable_params</c>: a module name ending in, or a parameter-holding module whose name contains, the
    /// entry. Default <c>["embed", "norm"]</c>; empty for LoRA only.
    /// </summary>
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

    /// <summary>Train with S2-Attn (<see cref="S2Attention"/>); evaluation always uses full attention. Default true.</summary>
    public bool UseS2 { get; init; } = true;

    /// <summary>The S2-Attn settings used in training (mode must be <see cref="AttentionMode.ShiftedSparse"/>); group ratio 1/4 by default.</summary>
    public AttentionOptions S2Attention
    {
        get => _s2;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(S2Attention));
            _s2 = value.Mode == AttentionMode.ShiftedSparse ? value
                : throw new ArgumentException($"{nameof(S2Attention)}.Mode must be ShiftedSparse; got {value.Mode}.", nameof(S2Attention));
        }
    }

    /// <summary>Recompute each decoder layer in backward instead of storing its activations. Default true.</summary>
    public bool GradientCheckpointing { get; init; } = true;

    /// <summary>4-bit quantization of the base linear layers before LoRA (QLoRA); null keeps them dense.</summary>
    public QuantizationOptions? Quantization { get; init; }

    /// <summary>The LoRA options in force: <see cref="Lora"/>, or LongLoRA's defaults for the chosen base.</summary>
    public LoraOptions EffectiveLora => Lora ?? new LoraOptions
    {
        Rank = 8,
        Alpha = 16,
        TargetModules = Quantization is null ? ["q_proj", "k_proj", "v_proj", "o_proj"] : [LoraOptions.AllLinear],
    };
}
