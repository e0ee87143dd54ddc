using LongContext.Attention;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Training;

namespace LongContext.Demo.Experiment;

/// <summary>The context-extension methods the papers compare, and the control.</summary>
public enum Method
{
    /// <summary>The base as pretrained at L, evaluated beyond it.</summary>
    None,
    /// <summary>Linear Position Interpolation to the target, no fine-tuning (the PI paper's zero-shot row).</summary>
    PiNoFinetune,
    /// <summary>Fine-tuning at the target length without PI (LoRA, full attention): extrapolation.</summary>
    Extrapolation,
    /// <summary>PI + LoRA on q,k,v,o with full attention.</summary>
    PiLora,
    /// <summary>PI + S2-Attn + LoRA + trainable embeddings and norms (LongLoRA).</summary>
    LongLora,
    /// <summary>PI + S2-Attn + LoRA on every linear layer over an NF4 base + embeddings and norms (LongQLoRA).</summary>
    LongQLora,
    /// <summary>The same fine-tuning tokens as PiLora, but at L without PI: separates "more training" from "extension".</summary>
    Control,
    /// <summary>
    /// Beyond the papers' comparison: Llama 3.1's frequency-aware scaling (HF <c>llama3</c>: the fast rotary pairs kept,
    /// the slow ones divided by the factor, a blend between) + LoRA on q,k,v,o with full attention, trained as PiLora.
    /// </summary>
    Llama3Lora,
    /// <summary>Opt-in: fine-tuning without PI with every weight trained, the PI paper's own "FT" setting.</summary>
    ExtrapolationFull,
    /// <summary>Opt-in: PI with every weight trained, the PI paper's own setting.</summary>
    PiFull,
}

/// <summary>How each <see cref="Method"/> prepares a model, through the library's LongLoRA recipe.</summary>
public static class Methods
{
    /// <summary>Every method, in table order.</summary>
    public static IReadOnlyList<Method> All { get; } = Enum.GetValues<Method>();

    /// <summary>
    /// The methods the demo runs when none are named, in table order: all but the full fine-tuning pair, which is
    /// opt-in (<c>--methods extrapolation-full,pi-full</c>; it wants its own learning rate, README).
    /// </summary>
    public static IReadOnlyList<Method> Default { get; } = All.Where(m => !TrainsEveryWeight(m)).ToArray();

    /// <summary>
    /// The methods <c>extend</c> offers on a model folder: every method that fine-tunes to the target length (not the
    /// control, which trains at L).
    /// </summary>
    public static IReadOnlyList<Method> Extensions { get; } = All.Where(m => Trains(m) && m != Method.Control).ToArray();

    /// <summary>The command-line name.</summary>
    /// <param name="method">The method.</param>
    public static string Key(Method method) => method switch
    {
        Method.None => "none",
        Method.PiNoFinetune => "pi",
        Method.Extrapolation => "extrapolation",
        Method.PiLora => "pi-lora",
        Method.LongLora => "longlora",
        Method.LongQLora => "longqlora",
        Method.Control => "control",
        Method.Llama3Lora => "llama3-lora",
        Method.ExtrapolationFull => "extrapolation-full",
        Method.PiFull => "pi-full",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
    };

    /// <summary>The row label.</summary>
    /// <param name="method">The method.</param>
    public static string Label(Method method) => method switch
    {
        Method.None => "no extension",
        Method.PiNoFinetune => "PI, no fine-tuning",
        Method.Extrapolation => "fine-tune without PI (extrapolation)",
        Method.PiLora => "PI + LoRA, full attention",
        Method.LongLora => "LongLoRA (PI + S2 + LoRA + embed/norm)",
        Method.LongQLora => "LongQLoRA (PI + S2 + NF4 QLoRA + embed/norm)",
        Method.Control => "same tokens at L, no PI (control)",
        Method.Llama3Lora => "Llama-3 scaling + LoRA, full attention",
        Method.ExtrapolationFull => "fine-tune every weight without PI (PI paper's FT)",
        Method.PiFull => "PI + fine-tune every weight (PI paper's)",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
    };

    /// <summary>Parses a command-line name.</summary>
    /// <param name="key">The name.</param>
    /// <exception cref="ArgumentException">An unknown name (the list is given).</exception>
    public static Method Parse(string key)
    {
        foreach (Method m in All)
            if (Key(m) == key) return m;
        throw new ArgumentException($"unknown method '{key}'; expected one of {string.Join(", ", All.Select(Key))}.", nameof(key));
    }

    /// <summary>Whether the method trains LoRA matrices (and so has a peft adapter to save).</summary>
    /// <param name="method">The method.</param>
    public static bool HasAdapter(Method method) => Trains(method) && !TrainsEveryWeight(method);

    /// <summary>Whether the method trains every weight (no LoRA): the opt-in full fine-tuning pair.</summary>
    /// <param name="method">The method.</param>
    public static bool TrainsEveryWeight(Method method) => method is Method.ExtrapolationFull or Method.PiFull;

    /// <summary>Whether the method trains with S2-Attn (LongLoRA's shifted sparse attention), whose groups need a row length that is a multiple of 8.</summary>
    /// <param name="method">The method.</param>
    public static bool UsesS2(Method method) => method is Method.LongLora or Method.LongQLora;

    /// <summary>Whether the method fine-tunes.</summary>
    /// <param name="method">The method.</param>
    public static bool Trains(Method method) => method is not (Method.None or Method.PiNoFinetune);

    /// <summary>The row length the method trains at.</summary>
    /// <param name="method">The method.</param>
    /// <param name="shortContext">L.</param>
    /// <param name="target">The target context.</param>
    public static int TrainingLength(Method method, int shortContext, int target) => method == Method.Control ? shortContext : target;

    /// <summary>
    /// Prepares <paramref name="model"/> in place for <paramref name="method"/> at <paramref name="target"/> tokens
    /// and returns the LoRA report (null for the methods without LoRA: no training, or every weight trained).
    /// </summary>
    /// <param name="model">A freshly loaded base.</param>
    /// <param name="method">The method.</param>
    /// <param name="target">Target context.</param>
    /// <param name="gradientCheckpointing">Recompute layers in backward (the recipe's default; off for the tiny demo model, where it costs time and saves nothing that matters).</param>
    /// <param name="loraRank">LoRA rank (alpha = 2 x rank, LongLoRA's ratio).</param>
    public static LoraInjectionReport? Prepare(LlamaForCausalLM model, Method method, int target, bool gradientCheckpointing, int loraRank = 8)
    {
        ArgumentNullException.ThrowIfNull(model);
        LoraOptions Lora(bool quantized) => LongLoraOptions.DefaultLora(quantized) with { Rank = loraRank, Alpha = 2 * loraRank };
        switch (method)
        {
            case Method.None:
                return null;
            case Method.PiNoFinetune:
                LongLora.ApplyPositionInterpolation(model, target);
                return null;
            case Method.Extrapolation:
                return LongLora.Prepare(model, new LongLoraOptions
                {
                    TargetContextLength = target, PositionInterpolation = false, S2 = null, TrainableExtras = [],
                    Lora = Lora(false), GradientCheckpointing = gradientCheckpointing,
                });
            case Method.PiLora:
                return LongLora.Prepare(model, new LongLoraOptions
                {
                    TargetContextLength = target, S2 = null, TrainableExtras = [], Lora = Lora(false), GradientCheckpointing = gradientCheckpointing,
                });
            case Method.LongLora:
                return LongLora.Prepare(model, new LongLoraOptions
                {
                    TargetContextLength = target, Lora = Lora(false), GradientCheckpointing = gradientCheckpointing,
                });
            case Method.LongQLora:
                return LongLora.Prepare(model, new LongLoraOptions
                {
                    TargetContextLength = target, Lora = Lora(true), Quantization = new QuantizationOptions(), GradientCheckpointing = gradientCheckpointing,
                });
            case Method.Llama3Lora:
                ApplyLlama3Scaling(model, target);
                return LongLora.Prepare(model, new LongLoraOptions
                {
                    TargetContextLength = target, PositionInterpolation = false, S2 = null, TrainableExtras = [], Lora = Lora(false),
                    GradientCheckpointing = gradientCheckpointing,
                });
            case Method.ExtrapolationFull:
            case Method.PiFull:
                if (method == Method.PiFull) LongLora.ApplyPositionInterpolation(model, target);
                else LongLora.ApplyExtrapolation(model, target);
                model.ConfigureAttention(new AttentionOptions { Mode = AttentionMode.Full, Dropout = model.Config.AttentionDropout });
                foreach (var p in model.parameters()) p.requires_grad = true;
                model.SetGradientCheckpointing(gradientCheckpointing);
                model.train();
                return null;
            case Method.Control:
                return LongLora.Prepare(model, new LongLoraOptions
                {
                    TargetContextLength = model.Config.MaxPositionEmbeddings, S2 = null, TrainableExtras = [], Lora = Lora(false),
                    GradientCheckpointing = gradientCheckpointing,
                });
            default:
                throw new ArgumentOutOfRangeException(nameof(method), method, null);
        }
    }

    /// <summary>
    /// Sets Llama 3.1's rope scaling for <paramref name="target"/> tokens on an unscaled model: factor target / L (at
    /// least 1), low_freq_factor 1 and high_freq_factor 4 (Llama 3.1's), original_max_position_embeddings L (the
    /// model's <c>max_position_embeddings</c>), the model's theta; <c>max_position_embeddings</c> becomes the target.
    /// Rotary pairs whose wavelength is below L / 4 keep their angles, those above L are divided by the factor.
    /// </summary>
    /// <param name="model">The model; its config and rotary embedding are updated.</param>
    /// <param name="target">Target context, positive.</param>
    /// <exception cref="NotSupportedException">The model's rope is already scaled.</exception>
    public static void ApplyLlama3Scaling(LlamaForCausalLM model, int target)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(target);
        LlamaConfig config = model.Config;
        if (config.Rope.Type != LongContext.Rope.RopeType.Default)
            throw new NotSupportedException(
                $"the model uses rope type {config.Rope.Type}; the {Key(Method.Llama3Lora)} method scales an unscaled (default) rope only.");
        int original = config.MaxPositionEmbeddings;
        double factor = Math.Max(1.0, target / (double)original);
        var rope = LongContext.Rope.RopeParameters.Llama3(factor, lowFreqFactor: 1, highFreqFactor: 4, original, config.Rope.Theta)
            with { PartialRotaryFactor = config.Rope.PartialRotaryFactor };
        model.UpdateRope(config with { Rope = rope, MaxPositionEmbeddings = Math.Max(target, original) });
    }
}
