using LongContext.Attention;
using LongContext.IO;
using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Rope;
using LongContext.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// The LongLoRA recipe on a <see cref="LlamaForCausalLM"/>: Position Interpolation to a target context, S2-Attn for
/// training and full attention for evaluation, LoRA with trainable embeddings and norms (optionally over a 4-bit
/// base), activation checkpointing; then a peft adapter (<see cref="SaveAdapter"/> / <see cref="LoadAdapter"/>), or a
/// merged plain checkpoint HF transformers loads (<see cref="SaveMerged"/>).
/// </summary>
public static class LongLora
{
    /// <summary>
    /// Prepares a loaded model for long-context fine-tuning, in place, and leaves it in training mode: Position
    /// Interpolation for <see cref="LongLoraOptions.TargetContextLength"/> (with
    /// <see cref="LongLoraOptions.PositionInterpolation"/> false, <see cref="ApplyExtrapolation"/> to it instead), <see cref="LongLoraOptions.S2"/> in training
    /// mode and full causal attention in evaluation mode, the optional 4-bit base, LoRA
    /// (<see cref="LongLoraOptions.ResolveLora"/>) with the trainable extras, activation checkpointing. Only the LoRA
    /// matrices and <see cref="LongLoraOptions.TrainableExtras"/> require gradients afterwards.
    /// </summary>
    /// <param name="model">A model loaded with <see cref="LlamaCheckpoint.Load"/>, without adapters.</param>
    /// <param name="options">Recipe settings; every value set there is used as set.</param>
    /// <returns>The injection report (wrapped modules, trainable modules, parameter counts).</returns>
    /// <exception cref="ArgumentException">Two settings conflict (both values named): see
    /// <see cref="LongLoraOptions.ResolveLora"/>, or <see cref="LongLoraOptions.S2"/>'s dropout differs from the model's
    /// <c>attention_dropout</c>; or the LoRA targets or trainable extras select no module of the model, or a quantization
    /// input is refused (<see cref="ModelQuantizer.Quantize"/>). All checked before the model changes.</exception>
    /// <exception cref="NotSupportedException">The model already uses a rope scaling other than linear PI, or (without PI) a
    /// scaled rope whose context is shorter than the target (checked first).</exception>
    public static LoraInjectionReport Prepare(LlamaForCausalLM model, LongLoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        LoraOptions lora = options.ResolveLora();
        double configDropout = model.Config.AttentionDropout;
        if (options.S2 is { } s2 && s2.Dropout != configDropout)
            throw new ArgumentException(
                $"{nameof(LongLoraOptions)}.{nameof(LongLoraOptions.S2)}.Dropout {s2.Dropout} conflicts with the model's attention_dropout {configDropout}; " +
                "the attention dropout has one value: set S2 to LongLoraOptions.DefaultS2 with { Dropout = " + configDropout + " } (or change the checkpoint's config).",
                nameof(options));
        if (options.PositionInterpolation) CheckInterpolable(model.Config.Rope);
        else CheckExtrapolable(model.Config, options.TargetContextLength);
        LoraInjector.CheckInjection(model, lora);     // targets and extras, before the model changes (quantization keeps the names)
        if (options.Quantization is not null)
        {
            ModelQuantizer.Quantize(model, options.Quantization);    // checks its inputs before it replaces any layer
            ModelQuantizer.PrepareForKbitTraining(model);
        }
        if (options.PositionInterpolation) ApplyPositionInterpolation(model, options.TargetContextLength);
        else ApplyExtrapolation(model, options.TargetContextLength);
        model.ConfigureAttention(options.S2 ?? new AttentionOptions { Mode = AttentionMode.Full, Dropout = configDropout });
        var report = options.Quantization is null ? LoraInjector.Inject(model, lora) : QLora.Inject(model, lora);
        model.SetGradientCheckpointing(options.GradientCheckpointing);
        model.train();
        return report;
    }

    /// <summary>
    /// Sets linear Position Interpolation for a target context as LongLoRA does, and returns the factor in force.
    /// The model's context is <c>original × f</c>, where original = <c>max_position_embeddings</c> (or the rope's
    /// <c>original_max_position_embeddings</c> when set) and f the linear factor already in the config (1 for an
    /// unscaled rope): LongLoRA's convention, so its published checkpoints (e.g. 4096 positions with linear factor 8,
    /// a 32k model) are read as what they are. A target within that context changes nothing. Beyond it, an unscaled
    /// model gets factor <c>ceil(target / original)</c>, and a linear-scaled one <c>f × ceil(target / (original × f))</c>
    /// (a further integer compression; LongLoRA's own script would set <c>ceil(target / (original × f))</c> alone,
    /// undoing the existing scaling). <c>max_position_embeddings</c> is never changed, as in LongLoRA.
    /// </summary>
    /// <param name="model">The model; its config and rotary embedding are updated.</param>
    /// <param name="targetContextLength">Context length to reach, positive.</param>
    /// <returns>The linear factor in force (1 when the rope stays unscaled).</returns>
    /// <exception cref="NotSupportedException">The model uses another rope scaling (dynamic, YaRN, ...).</exception>
    public static double ApplyPositionInterpolation(LlamaForCausalLM model, int targetContextLength)
    {
        ArgumentNullException.ThrowIfNull(model);
        Guard.Positive(targetContextLength);
        LlamaConfig config = model.Config;
        RopeParameters rope = config.Rope;
        CheckInterpolable(rope);
        double current = rope.Type == RopeType.Linear ? rope.Factor : 1.0;
        long context = ContextLength(config);
        if (targetContextLength <= context) return current;
        double factor = current * Math.Ceiling(targetContextLength / (double)context);
        model.UpdateRope(config with { Rope = rope with { Type = RopeType.Linear, Factor = factor } });
        return factor;
    }

    /// <summary>
    /// Extension by extrapolation, the PI paper's baseline: the rope stays as it is and the model's context is declared
    /// to be <paramref name="targetContextLength"/> (<c>max_position_embeddings</c> raised to it), so rows of that length
    /// are accepted and positions past the trained window are run unscaled. A target within the model's context
    /// (<see cref="ContextLength"/>) changes nothing. Only an unscaled rope is extended this way: for a scaled one,
    /// <c>max_position_embeddings</c> is part of the scaling (dynamic NTK, YaRN, a linear factor over it).
    /// </summary>
    /// <param name="model">The model; its config and rotary embedding are updated.</param>
    /// <param name="targetContextLength">Context length to reach, positive.</param>
    /// <returns>The model's context afterwards.</returns>
    /// <exception cref="NotSupportedException">The target is past the context of a model whose rope is scaled.</exception>
    public static long ApplyExtrapolation(LlamaForCausalLM model, int targetContextLength)
    {
        ArgumentNullException.ThrowIfNull(model);
        Guard.Positive(targetContextLength);
        LlamaConfig config = model.Config;
        CheckExtrapolable(config, targetContextLength);
        long context = ContextLength(config);
        if (targetContextLength <= context) return context;
        model.UpdateRope(config with { MaxPositionEmbeddings = targetContextLength });
        return ContextLength(model.Config);
    }

    /// <summary>Refuses extrapolation past the context of a scaled rope (see <see cref="ApplyExtrapolation"/>).</summary>
    private static void CheckExtrapolable(LlamaConfig config, int targetContextLength)
    {
        long context = ContextLength(config);
        if (targetContextLength > context && config.Rope.Type != RopeType.Default)
            throw new NotSupportedException(
                $"extrapolating to {targetContextLength} tokens needs max_position_embeddings raised past the model's context of {context}, and its rope type " +
                $"{config.Rope.Type} reads max_position_embeddings as part of its scaling; extrapolate from an unscaled rope, or set PositionInterpolation.");
    }

    /// <summary>Refuses a rope that linear Position Interpolation cannot scale (a type other than default or linear).</summary>
    private static void CheckInterpolable(RopeParameters rope)
    {
        if (rope.Type is not (RopeType.Default or RopeType.Linear))
            throw new NotSupportedException(
                $"the model uses rope type {rope.Type}; Position Interpolation applies to an unscaled (default) or linearly scaled rope only.");
    }

    /// <summary>
    /// The context a config runs at under LongLoRA's convention: <c>floor(original × f)</c>, where original is
    /// <c>max_position_embeddings</c> (or the rope's <c>original_max_position_embeddings</c> when set) and f the linear
    /// PI factor (1 for any other rope type). <see cref="ApplyPositionInterpolation"/> leaves
    /// <c>max_position_embeddings</c> unchanged, so after PI to 4x this is 4x <c>max_position_embeddings</c>.
    /// </summary>
    /// <param name="config">The model's config.</param>
    public static long ContextLength(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        RopeParameters rope = config.Rope;
        int original = rope.OriginalWindow(config.MaxPositionEmbeddings);
        double factor = rope.Type == RopeType.Linear ? rope.Factor : 1.0;
        return Math.Max(config.MaxPositionEmbeddings, (long)Math.Floor(original * factor));
    }

    /// <summary>
    /// Saves the adapter in peft's format (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>, the
    /// trainable extras as <c>modules_to_save</c>) plus the model's PI-updated <c>config.json</c>, which
    /// <see cref="LoadAdapter"/> applies again.
    /// </summary>
    /// <param name="model">The prepared (and trained) model.</param>
    /// <param name="folder">Destination folder.</param>
    /// <param name="baseModelNameOrPath">Written as <c>base_model_name_or_path</c>.</param>
    public static void SaveAdapter(LlamaForCausalLM model, string folder, string? baseModelNameOrPath = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        // All three files are written before any replaces its predecessor: a failure leaves the previous adapter
        // and the rope settings it was trained with whole, never a new adapter beside an old config.json.
        AtomicFile.WriteTogether(staged =>
        {
            PeftAdapter.Stage(model, folder, baseModelNameOrPath, "default", staged);
            staged.Add(model.Config.Stage(folder));
        });
    }

    /// <summary>
    /// The inverse of <see cref="SaveAdapter"/>: applies the rope settings of the folder's <c>config.json</c> (the
    /// PI factor the adapter was trained with) to a freshly loaded base and loads the peft adapter onto it (over a
    /// 4-bit base through <see cref="QLora.LoadAdapter"/>). Nothing needs to be remembered besides the folder.
    /// </summary>
    /// <param name="model">The base model the adapter was trained on, without adapters (dense or quantized).</param>
    /// <param name="folder">A folder written by <see cref="SaveAdapter"/>.</param>
    /// <returns>The injection report of the loaded adapter.</returns>
    /// <exception cref="FileNotFoundException">The folder has no <c>config.json</c>.</exception>
    /// <exception cref="ArgumentException">The folder's config describes another model shape (named field).</exception>
    /// <exception cref="InvalidDataException">The adapter does not fit the model (<see cref="PeftAdapter.Load"/>); the model,
    /// its rope included, is left as it was.</exception>
    public static LoraInjectionReport LoadAdapter(LlamaForCausalLM model, string folder)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(folder);
        string configFile = Path.Combine(folder, "config.json");
        if (!File.Exists(configFile))
            throw new FileNotFoundException($"'{folder}' holds no config.json; LongLora.SaveAdapter writes one next to the adapter (the rope settings it was trained with).", configFile);
        LlamaConfig saved = LlamaConfig.Load(configFile);
        if (AdapterShapeDifferences(saved, model.Config) is { } differences)
            throw new ArgumentException($"'{configFile}' describes another model than the one given: {differences}.", nameof(folder));
        LlamaConfig trained = model.Config with { Rope = saved.Rope, MaxPositionEmbeddings = saved.MaxPositionEmbeddings };   // validated here
        bool quantized = model.modules().Any(m => m is Linear4Bit);
        // The adapter first: a refused one leaves the model as it was, rope included (the load does not read the rope).
        LoraInjectionReport report = quantized ? QLora.LoadAdapter(model, folder) : PeftAdapter.Load(model, folder);
        model.UpdateRope(trained);
        return report;
    }

    /// <summary>
    /// How the config an adapter was saved with (<see cref="SaveAdapter"/>'s <c>config.json</c>) differs from a model's
    /// in the shape fields an adapter depends on (vocabulary, hidden and MLP sizes, layers, heads, head size), as
    /// "HiddenSize 128 (model: 64), ..."; null when they agree and <see cref="LoadAdapter"/> can apply it. Lets a caller
    /// check an adapter against a checkpoint's <c>config.json</c> before loading any weights.
    /// </summary>
    /// <param name="adapterConfig">The adapter folder's config.</param>
    /// <param name="modelConfig">The model's config.</param>
    public static string? AdapterShapeDifferences(LlamaConfig adapterConfig, LlamaConfig modelConfig)
    {
        ArgumentNullException.ThrowIfNull(adapterConfig);
        ArgumentNullException.ThrowIfNull(modelConfig);
        var differences = new (string Name, object Saved, object Model)[]
        {
            (nameof(LlamaConfig.VocabSize), adapterConfig.VocabSize, modelConfig.VocabSize),
            (nameof(LlamaConfig.HiddenSize), adapterConfig.HiddenSize, modelConfig.HiddenSize),
            (nameof(LlamaConfig.IntermediateSize), adapterConfig.IntermediateSize, modelConfig.IntermediateSize),
            (nameof(LlamaConfig.NumHiddenLayers), adapterConfig.NumHiddenLayers, modelConfig.NumHiddenLayers),
            (nameof(LlamaConfig.NumAttentionHeads), adapterConfig.NumAttentionHeads, modelConfig.NumAttentionHeads),
            (nameof(LlamaConfig.NumKeyValueHeads), adapterConfig.NumKeyValueHeads, modelConfig.NumKeyValueHeads),
            (nameof(LlamaConfig.HeadDim), adapterConfig.HeadDim, modelConfig.HeadDim),
        }.Where(d => !d.Saved.Equals(d.Model)).ToList();
        return differences.Count == 0 ? null : string.Join(", ", differences.Select(d => $"{d.Name} {d.Saved} (model: {d.Model})"));
    }

    /// <summary>
    /// The model's weights as a plain HF checkpoint: LoRA deltas added to their base weights (4-bit bases
    /// dequantized), extras as trained, HF names. The model itself is not changed.
    /// </summary>
    /// <param name="model">A model with or without adapters (the active adapter is merged).</param>
    /// <returns>Tensors by HF name (new tensors, caller disposes).</returns>
    public static Dictionary<string, Tensor> MergedParameters(LlamaForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var expected = LlamaCheckpoint.ExpectedParameters(model.Config);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var noGrad = no_grad();
        foreach (var (key, shape) in expected)
        {
            int dot = key.LastIndexOf('.');
            string owner = key[..dot], leaf = key[(dot + 1)..];
            Tensor value;
            if (parameters.TryGetValue(key, out Tensor? direct)) value = direct.detach().clone();
            else if (modules.TryGetValue(owner, out var module) && module is LoraLayer lora)
                value = leaf == "weight" ? MergedWeight(lora, key) : Dense(lora.BaseLayer, leaf, key);
            else if (modules.TryGetValue(owner, out var plain)) value = Dense(plain, leaf, key);
            else throw new InvalidOperationException($"the model has no module '{owner}' for HF tensor '{key}'.");
            if (!value.shape.SequenceEqual(shape))
                throw new InvalidOperationException($"merged tensor '{key}' has shape [{string.Join(", ", value.shape)}]; expected [{string.Join(", ", shape)}].");
            result[key] = value;
        }
        return result;
    }

    /// <summary>
    /// Writes the merged model as a plain HF checkpoint folder (<c>config.json</c> with the PI rope settings +
    /// <c>model.safetensors</c>) that <c>LlamaForCausalLM.from_pretrained</c> and <see cref="LlamaCheckpoint.Load"/> read.
    /// </summary>
    /// <param name="model">The trained model (not changed).</param>
    /// <param name="folder">Destination folder.</param>
    /// <param name="dtype">Dtype of the saved weights; null keeps the embedding's dtype.</param>
    public static void SaveMerged(LlamaForCausalLM model, string folder, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(folder);
        var merged = MergedParameters(model);
        try
        {
            ScalarType type = dtype ?? merged["model.embed_tokens.weight"].dtype;
            using var plain = new LlamaForCausalLM(model.Config, type);
            var target = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            using (no_grad())
                foreach (var (key, t) in merged) target[key].copy_(t);
            LlamaCheckpoint.Save(plain, folder);
        }
        finally
        {
            foreach (var t in merged.Values) t.Dispose();
        }
    }

    private static Tensor MergedWeight(LoraLayer lora, string key)
    {
        Tensor dense = Dense(lora.BaseLayer, "weight", key);
        if (lora.Merged || !lora.AdapterEnabled) return dense;
        using Tensor delta = lora.DeltaWeight();
        return dense.add_(delta.to(dense.dtype));
    }

    private static Tensor Dense(nn.Module module, string leaf, string key) => (module, leaf) switch
    {
        (Linear4Bit q, "weight") => q.DequantizeWeight(),
        (Linear4Bit q, "bias") when q.Bias is not null => q.Bias.detach().clone(),
        _ when module.named_parameters(recurse: false).FirstOrDefault(p => p.name == leaf).parameter is { } p => p.detach().clone(),
        _ => throw new InvalidOperationException($"cannot read HF tensor '{key}' from a {module.GetType().Name}."),
    };
}
