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
/// base), activation checkpointing; then a peft adapter, or a merged plain checkpoint HF transformers loads.
/// </summary>
public static class LongLora
{
    /// <summary>
    /// Prepares a loaded model for long-context fine-tuning, in place, and leaves it in training mode. Only the LoRA
    /// matrices and <see cref="LongLoraOptions.TrainableExtras"/> require gradients afterwards.
    /// </summary>
    /// <param name="model">A model loaded with <see cref="LlamaCheckpoint.Load"/>, without adapters.</param>
    /// <param name="options">Recipe settings.</param>
    /// <returns>The injection report (wrapped modules, trainable modules, parameter counts).</returns>
    /// <exception cref="NotSupportedException">The model already uses a rope scaling other than linear PI.</exception>
    public static LoraInjectionReport Prepare(LlamaForCausalLM model, LongLoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        ApplyPositionInterpolation(model, options.TargetContextLength);
        model.ConfigureAttention(options.UseS2
            ? options.S2Attention with { Dropout = model.Config.AttentionDropout }
            : new AttentionOptions { Mode = AttentionMode.Full, Dropout = model.Config.AttentionDropout });
        if (options.Quantization is not null)
        {
            ModelQuantizer.Quantize(model, options.Quantization);
            ModelQuantizer.PrepareForKbitTraining(model);
        }
        var lora = options.EffectiveLora with { ModulesToSave = options.TrainableExtras };
        var report = options.Quantization is null ? LoraInjector.Inject(model, lora) : QLora.Inject(model, lora);
        model.SetGradientCheckpointing(options.GradientCheckpointing);
        model.train();
        return report;
    }

    /// <summary>
    /// Sets linear Position Interpolation for a target context: factor <c>ceil(target / original)</c> with
    /// original = the config's <c>max_position_embeddings</c> (or the rope's original length when already linear),
    /// written into the config's rope parameters; <c>max_position_embeddings</c> becomes original × factor.
    /// Nothing changes when the target fits in the original window.
    /// </summary>
    /// <param name="model">The model; its config and rotary embedding are updated.</param>
    /// <param name="targetContextLength">Context length to reach, positive.</param>
    /// <returns>The factor in force.</returns>
    /// <exception cref="NotSupportedException">The model uses another rope scaling (dynamic, YaRN, ...), or linear
    /// PI with a different factor.</exception>
    public static int ApplyPositionInterpolation(LlamaForCausalLM model, int targetContextLength)
    {
        ArgumentNullException.ThrowIfNull(model);
        LlamaConfig config = model.Config;
        RopeParameters rope = config.Rope;
        int original = rope.Type == RopeType.Linear
            ? rope.OriginalMaxPositionEmbeddings ?? (int)Math.Round(config.MaxPositionEmbeddings / rope.Factor)
            : config.MaxPositionEmbeddings;
        int factor = PositionInterpolation.Factor(targetContextLength, original);
        if (rope.Type == RopeType.Linear)
        {
            if (Math.Abs(rope.Factor - factor) > 1e-12)
                throw new NotSupportedException(
                    $"the model already uses linear rope scaling with factor {rope.Factor}; a target of {targetContextLength} tokens over {original} needs {factor}. Start from the unscaled model.");
            return factor;
        }
        if (rope.Type != RopeType.Default)
            throw new NotSupportedException(
                $"the model uses rope type {rope.Type}; Position Interpolation applies to unscaled (default) rope only.");
        if (factor == 1) return 1;
        model.UpdateRope(config with
        {
            Rope = rope with { Type = RopeType.Linear, Factor = factor, OriginalMaxPositionEmbeddings = null },
            MaxPositionEmbeddings = original * factor,
        });
        return factor;
    }

    /// <summary>
    /// Saves the adapter in peft's format (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>, the
    /// trainable extras as <c>modules_to_save</c>) plus the model's PI-updated <c>config.json</c>, which the base must
    /// be loaded with for the adapter to mean what it was trained for.
    /// </summary>
    /// <param name="model">The prepared (and trained) model.</param>
    /// <param name="folder">Destination folder.</param>
    /// <param name="baseModelNameOrPath">Written as <c>base_model_name_or_path</c>.</param>
    public static void SaveAdapter(LlamaForCausalLM model, string folder, string? baseModelNameOrPath = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        PeftAdapter.Save(model, folder, baseModelNameOrPath);
        model.Config.Save(folder);
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
