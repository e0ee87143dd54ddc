using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// Puts LoRA adapters into any TorchSharp module tree by module name (as peft's <c>get_peft_model</c>), freezes
/// everything else, and marks extra modules trainable in full (LongLoRA's <c>embed,norm</c>).
/// </summary>
/// <remarks>
/// Names are TorchSharp <c>named_modules()</c> names. A parent's field that holds a wrapped module must be declared
/// as <c>Module&lt;Tensor, Tensor&gt;</c> (not <c>Linear</c>) so that it can hold the wrapper.
/// </remarks>
public static class LoraInjector
{
    /// <summary>
    /// Wraps every matching Linear (as <see cref="LoraLinear"/>) and Embedding (as <see cref="LoraEmbedding"/>), or
    /// adds the adapter to modules already wrapped; then freezes all other parameters, unfreezes biases per
    /// <see cref="LoraOptions.Bias"/>, and marks <see cref="LoraOptions.ModulesToSave"/> trainable.
    /// </summary>
    /// <param name="root">The model.</param>
    /// <param name="options">Adapter hyper-parameters and targets.</param>
    /// <param name="adapterName">Name of the adapter; the first adapter of a layer becomes its active one.</param>
    /// <param name="linearLike">
    /// Recognises other linear-like layers (e.g. <c>QLora.Resolve</c> for 4-bit linears); they count as Linear for the
    /// targets, <c>all-linear</c> included, and are wrapped through <see cref="LoraLinear"/> with the weight access it gives.
    /// </param>
    /// <returns>Which modules were wrapped and the parameter totals afterwards.</returns>
    /// <exception cref="ArgumentException">No module matches the targets.</exception>
    /// <exception cref="NotSupportedException">A matching module is neither Linear, linear-like, nor Embedding.</exception>
    public static LoraInjectionReport Inject(nn.Module root, LoraOptions options, string adapterName = "default", LoraLinearBaseResolver? linearLike = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(options);
        var all = Candidates(root);
        var wrapped = new List<string>();
        foreach (var (name, module) in all)
        {
            LoraLinearBase? other = module is Linear or ILoraLayer || linearLike is null ? null : linearLike(module);
            bool isLinear = module is Linear or LoraLinear || other is not null;
            if (!TargetMatcher.IsTarget(name, isLinear, options)) continue;
            switch (module)
            {
                case ILoraLayer layer:
                    layer.AddAdapter(adapterName, options);
                    break;
                case Linear lin:
                    ModuleTree.Replace(root, name, LoraLinear.Wrap(lin, options, adapterName));
                    break;
                case Embedding emb:
                    ModuleTree.Replace(root, name, new LoraEmbedding(emb, options, adapterName));
                    break;
                case nn.Module<Tensor, Tensor> baseLayer when other is not null:
                    ModuleTree.Replace(root, name, new LoraLinear(baseLayer, other.InFeatures, other.OutFeatures, options, other.Weight, adapterName));
                    break;
                default:
                    if (options.TargetRegex is null && options.TargetModules.Contains(LoraOptions.AllLinear)) continue;
                    throw new NotSupportedException($"target module '{name}' is a {module.GetType().Name}; LoRA supports Linear and Embedding (wrap other layers with new LoraLinear(..., baseWeight)).");
            }
            wrapped.Add(name);
        }
        if (wrapped.Count == 0)
        {
            string targets = options.TargetRegex is { } r ? $"regex '{r}'" : $"[{string.Join(", ", options.TargetModules)}]";
            string sample = string.Join(", ", all.Select(m => m.Name).Take(12));
            throw new ArgumentException($"target modules {targets} match no Linear or Embedding module of the model; module names include: {sample}.", nameof(options));
        }

        Freeze(root, options.Bias);
        if (options.ModulesToSave.Count > 0) MarkTrainable(root, options.ModulesToSave);
        else ReapplyTrainable(root);
        return new LoraInjectionReport(adapterName, wrapped, LoraRegistry.TrainableModules(root).ToList(), ParameterCounter.Count(root));
    }

    /// <summary>
    /// Marks modules trainable in full and records them to be saved with the adapter (peft's
    /// <c>modules_to_save</c>). A name selects a module whose full name equals it or ends with "." + name, or a
    /// module holding parameters whose last name segment contains it (so <c>embed</c> selects
    /// <c>model.embed_tokens</c> and <c>norm</c> every RMSNorm, as LongLoRA's <c>trainable_params</c>).
    /// </summary>
    /// <param name="root">The model.</param>
    /// <param name="moduleNames">Names such as <c>["embed", "norm"]</c>.</param>
    /// <exception cref="ArgumentException">A name selects no module, or selects a LoRA-wrapped module.</exception>
    public static void MarkTrainable(nn.Module root, IEnumerable<string> moduleNames)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(moduleNames);
        var candidates = Candidates(root);
        var marked = LoraRegistry.TrainableModules(root);
        foreach (string target in moduleNames)
        {
            if (string.IsNullOrWhiteSpace(target)) throw new ArgumentException("module names must not be empty.", nameof(moduleNames));
            int found = 0;
            foreach (var (name, module) in candidates)
            {
                bool holds = module.named_parameters(recurse: false).Any();
                if (!TargetMatcher.IsTrainableTarget(name, holds, target)) continue;
                if (module is ILoraLayer)
                    throw new ArgumentException($"'{target}' selects '{name}', which carries a LoRA adapter and cannot also be trained in full.", nameof(moduleNames));
                marked.Add(name);
                found++;
            }
            if (found == 0)
                throw new ArgumentException($"'{target}' selects no module of the model (module names include: {string.Join(", ", candidates.Select(c => c.Name).Take(12))}).", nameof(moduleNames));
        }
        ReapplyTrainable(root);
    }

    /// <summary>Makes an adapter active in every LoRA layer that holds it.</summary>
    /// <param name="root">The model.</param>
    /// <param name="adapterName">The adapter.</param>
    /// <exception cref="ArgumentException">No layer holds the adapter.</exception>
    public static void SetActiveAdapter(nn.Module root, string adapterName)
    {
        var layers = Layers(root).Where(l => l.Layer.AdapterNames.Contains(adapterName)).ToList();
        if (layers.Count == 0) throw new ArgumentException($"no LoRA layer holds adapter '{adapterName}'.", nameof(adapterName));
        foreach (var (_, l) in layers) l.SetActiveAdapter(adapterName);
    }

    /// <summary>Enables or disables the adapters of every LoRA layer.</summary>
    /// <param name="root">The model.</param>
    /// <param name="enabled">False: forward gives the base model's output.</param>
    public static void SetAdapterEnabled(nn.Module root, bool enabled)
    {
        foreach (var (_, l) in Layers(root)) l.AdapterEnabled = enabled;
    }

    /// <summary>Merges the active adapter of every LoRA layer into its base weight.</summary>
    /// <param name="root">The model.</param>
    public static void Merge(nn.Module root)
    {
        foreach (var (_, l) in Layers(root)) l.Merge();
    }

    /// <summary>Unmerges every merged LoRA layer.</summary>
    /// <param name="root">The model.</param>
    public static void Unmerge(nn.Module root)
    {
        foreach (var (_, l) in Layers(root)) if (l.Merged) l.Unmerge();
    }

    /// <summary>The LoRA layers of a tree with their full names, in tree order.</summary>
    /// <param name="root">The model.</param>
    public static IReadOnlyList<(string Name, ILoraLayer Layer)> Layers(nn.Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return root.named_modules().Where(m => m.module is ILoraLayer).Select(m => (m.name, (ILoraLayer)m.module)).ToList();
    }

    /// <summary>Modules outside LoRA layers' insides (their base_layer / lora_* children), in tree order.</summary>
    internal static List<(string Name, nn.Module Module)> Candidates(nn.Module root)
    {
        var loraNames = new List<string>();
        var result = new List<(string, nn.Module)>();
        foreach (var (name, module) in root.named_modules())
        {
            if (loraNames.Any(l => name.StartsWith(l + ".", StringComparison.Ordinal))) continue;
            if (module is ILoraLayer) loraNames.Add(name);
            result.Add((name, module));
        }
        return result;
    }

    private static void Freeze(nn.Module root, LoraBias bias)
    {
        var layers = Layers(root);
        var loraPrefixes = layers.Select(l => l.Name + ".lora_").ToList();
        var loraBiasNames = layers.Select(l => l.Name + ".base_layer.bias").ToHashSet(StringComparer.Ordinal);
        foreach (var (name, p) in root.named_parameters())
        {
            if (loraPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal))) continue;
            bool isBias = TargetMatcher.LastSegment(name) == "bias";
            p.requires_grad = bias switch
            {
                LoraBias.All => isBias,
                LoraBias.LoraOnly => loraBiasNames.Contains(name),
                _ => false,
            };
        }
        foreach (var (_, l) in layers) l.SetActiveAdapter(l.ActiveAdapter);
    }

    private static void ReapplyTrainable(nn.Module root)
    {
        foreach (string name in LoraRegistry.TrainableModules(root))
            foreach (var p in ModuleTree.Find(root, name).parameters())
                p.requires_grad = true;
    }
}
