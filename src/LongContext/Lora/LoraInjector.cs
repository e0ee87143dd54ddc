using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// Puts LoRA adapters into any TorchSharp module tree by module name (as peft's <c>get_peft_model</c>), freezes
/// everything else, and marks extra modules trainable in full (LongLoRA's <c>embed,norm</c>).
/// </summary>
/// <remarks>
/// Names are TorchSharp <c>named_modules()</c> names. A parent's field that holds a wrapped module must be declared
/// as <c>Module&lt;Tensor, Tensor&gt;</c> (not <c>Linear</c>) so that it can hold the wrapper. Nothing is remembered
/// outside the model: each LoRA layer keeps its adapters' options (modules to save included), which
/// <see cref="PeftAdapter.Save"/> reads back.
/// </remarks>
public static class LoraInjector
{
    /// <summary>
    /// Wraps every matching linear-like module (as <see cref="LoraLinear"/>) and embedding (as <see cref="LoraEmbedding"/>),
    /// or adds the adapter to modules already wrapped; then sets what trains: the A and B of each layer's active
    /// adapter, the biases <see cref="LoraOptions.Bias"/> selects and the modules <see cref="LoraOptions.ModulesToSave"/>
    /// selects. Every other parameter is frozen (modules an earlier call trained in full included).
    /// </summary>
    /// <param name="root">The model.</param>
    /// <param name="options">Adapter hyper-parameters and targets.</param>
    /// <param name="adapterName">Name of the adapter; the first adapter of a layer becomes its active one.</param>
    /// <param name="resolve">
    /// Describes modules before the built-in rule (<see cref="LoraBaseDescriptor.ForBuiltIn"/>): e.g. <c>QLora.Resolve</c>
    /// for 4-bit linears, which then count as Linear for the targets (<c>all-linear</c> included), or an
    /// <see cref="EmbeddingBaseDescriptor"/> that states a padding index.
    /// </param>
    /// <returns>Which modules were wrapped and trained in full, and the parameter totals afterwards.</returns>
    /// <exception cref="ArgumentException">No module matches the targets, a <see cref="LoraOptions.ModulesToSave"/> name selects nothing,
    /// both <see cref="LoraOptions.TargetModules"/> and <see cref="LoraOptions.TargetRegex"/> are set, or a target already
    /// holds an adapter named <paramref name="adapterName"/> (parameter <c>adapterName</c>, the first such module named).</exception>
    /// <exception cref="NotSupportedException">A matching module has no descriptor (neither linear-like nor an embedding).</exception>
    /// <exception cref="InvalidOperationException">The resolver described a different module than the one it was given, or a
    /// parent's field cannot hold the wrapper (named). Every refusal is made before any module changes.</exception>
    public static LoraInjectionReport Inject(nn.Module root, LoraOptions options, string adapterName = "default", LoraBaseResolver? resolve = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(options);
        return InjectPlanned(root, options, adapterName, Plan(root, options, adapterName, resolve));
    }

    /// <summary>
    /// <see cref="Inject"/>, also returning how to take it back (for a load that finds the weights unfit after
    /// injecting): the undo puts the unwrapped modules back, removes the adapter from layers that held others, and
    /// restores every parameter's <c>requires_grad</c>. Values written into parameters afterwards are not undone.
    /// </summary>
    internal static (LoraInjectionReport Report, Action Undo) InjectUndoable(nn.Module root, LoraOptions options, string adapterName, LoraBaseResolver? resolve)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(options);
        var targets = Plan(root, options, adapterName, resolve);
        var trainable = root.parameters().Select(p => (Parameter: p, p.requires_grad)).ToList();
        var report = InjectPlanned(root, options, adapterName, targets);
        void Undo()
        {
            foreach (var (name, module, _) in targets)
            {
                if (module is LoraLayer layer)
                {
                    layer.RemoveAdapter(adapterName);
                    continue;
                }
                var wrapper = (LoraLayer)ModuleTree.Find(root, name);
                ModuleTree.Replace(root, name, module);
                wrapper.RemoveAdapter(adapterName);       // its A and B; the base is the model's again
            }
            foreach (var (p, requiresGrad) in trainable) p.requires_grad = requiresGrad;
        }
        return (report, Undo);
    }

    private static LoraInjectionReport InjectPlanned(nn.Module root, LoraOptions options, string adapterName,
        List<(string Name, nn.Module Module, LoraBaseDescriptor? Descriptor)> targets)
    {
        var wrapped = new List<string>();
        foreach (var (name, module, descriptor) in targets)
        {
            LoraLayer? replacement = (module, descriptor) switch
            {
                (LoraLayer, _) => null,
                (_, LinearBaseDescriptor linear) => new LoraLinear(linear, options, adapterName),
                (_, EmbeddingBaseDescriptor embedding) => new LoraEmbedding(embedding, options, adapterName),
                _ => throw new InvalidOperationException($"target module '{name}' has no descriptor."),   // refused above
            };
            if (replacement is null) ((LoraLayer)module).AddAdapter(adapterName, options);
            else ModuleTree.Replace(root, name, replacement);
            wrapped.Add(name);
        }

        Freeze(root, options.Bias);
        var trainable = options.ModulesToSave.Count > 0 ? MarkTrainable(root, options.ModulesToSave) : [];
        return new LoraInjectionReport(adapterName, wrapped, trainable, ParameterCounter.Count(root));
    }

    /// <summary>
    /// Checks that <see cref="Inject"/> would succeed on <paramref name="root"/> with <paramref name="options"/>, changing
    /// nothing: the settings, every target's kind, at least one target, targets not also trained in full, and every
    /// <see cref="LoraOptions.ModulesToSave"/> name selecting a module. A recipe calls it before it changes the model.
    /// </summary>
    internal static void CheckInjection(nn.Module root, LoraOptions options, string adapterName = "default", LoraBaseResolver? resolve = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(options);
        _ = Plan(root, options, adapterName, resolve);
    }

    /// <summary>The modules <see cref="Inject"/> wraps (with their descriptors), after every check that needs no change to the model.</summary>
    private static List<(string Name, nn.Module Module, LoraBaseDescriptor? Descriptor)> Plan(nn.Module root, LoraOptions options, string adapterName, LoraBaseResolver? resolve)
    {
        options.CheckSettingsUsed(nameof(options));
        var all = Candidates(root);
        var describers = new[] { root }.Concat(root.modules()).OfType<ILoraBaseDescriber>().Distinct().ToList();
        var targets = new List<(string Name, nn.Module Module, LoraBaseDescriptor? Descriptor)>();
        foreach (var (name, module) in all)
        {
            LoraBaseDescriptor? descriptor = module is LoraLayer ? null
                : resolve?.Invoke(module) ?? describers.Select(d => d.DescribeForLora(module)).FirstOrDefault(d => d is not null) ?? LoraBaseDescriptor.ForBuiltIn(module);
            if (descriptor is not null && !ReferenceEquals(descriptor.Module, module))
                throw new InvalidOperationException($"the resolver described a {descriptor.Module.GetType().Name} for module '{name}', a {module.GetType().Name}; a descriptor must describe the module it was given.");
            bool isLinear = module is LoraLinear || descriptor is LinearBaseDescriptor;
            if (!TargetMatcher.IsTarget(name, isLinear, options)) continue;
            if (module is not LoraLayer && descriptor is not (LinearBaseDescriptor or EmbeddingBaseDescriptor))
                throw new NotSupportedException(
                    $"target module '{name}' is a {module.GetType().Name}; LoRA wraps Linear and Embedding layers, and other layers a resolver describes (a LinearBaseDescriptor or an EmbeddingBaseDescriptor).");
            targets.Add((name, module, descriptor));
        }
        CheckNoTargetIsTrainedInFull(targets.Select(t => (t.Name, t.Module)), options);
        if (targets.Count == 0)
        {
            string sample = string.Join(", ", all.Select(m => m.Name).Take(12));
            throw new ArgumentException($"target modules {DescribeTargets(options)} match no Linear or Embedding module of the model; module names include: {sample}.", nameof(options));
        }
        // Checks that wrapping or adding would make part-way, made for every target before the first one changes.
        var holding = targets.Where(t => t.Module is LoraLayer l && l.AdapterNames.Contains(adapterName)).Select(t => t.Name).ToList();
        if (holding.Count > 0)
            throw new ArgumentException(
                $"adapter '{adapterName}' is already present in {holding.Count} of the {targets.Count} target modules (first: '{holding[0]}'); " +
                "inject under another adapter name, or into a model without it.", nameof(adapterName));
        foreach (var (name, module, descriptor) in targets)
            if (module is not LoraLayer)
                ModuleTree.CheckReplace(root, name, descriptor is LinearBaseDescriptor ? typeof(LoraLinear) : typeof(LoraEmbedding));
        if (options.ModulesToSave.Count > 0) _ = SelectModules(root, options.ModulesToSave);   // a name selecting nothing fails before any layer is wrapped
        return targets;
    }

    /// <summary>
    /// Unfreezes modules to train in full. A name selects a module whose full name equals it or ends with "." + name,
    /// or a module holding parameters whose last name segment contains it (so <c>embed</c> selects
    /// <c>model.embed_tokens</c> and <c>norm</c> every RMSNorm, as LongLoRA's <c>trainable_params</c>). To save such
    /// modules with an adapter, list them in <see cref="LoraOptions.ModulesToSave"/> instead (peft's <c>modules_to_save</c>).
    /// </summary>
    /// <param name="root">The model.</param>
    /// <param name="moduleNames">Names such as <c>["embed", "norm"]</c>.</param>
    /// <returns>The full names of the selected modules, sorted.</returns>
    /// <exception cref="ArgumentException">A name is empty, selects no module, or selects a LoRA-wrapped module.</exception>
    public static IReadOnlyList<string> MarkTrainable(nn.Module root, IEnumerable<string> moduleNames)
    {
        var selected = SelectModules(root, moduleNames);
        foreach (string name in selected)
            foreach (var p in ModuleTree.Find(root, name).parameters())
                p.requires_grad = true;
        return selected;
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

    /// <summary>Merges the active adapter of every LoRA layer into its base weight: all layers or none.</summary>
    /// <param name="root">The model.</param>
    /// <remarks>
    /// Every layer is checked before any weight changes; a base that refuses the write part-way (for example a
    /// <see cref="LoraBaseDescriptor"/> that cannot be written) has the layers merged before it unmerged again.
    /// </remarks>
    /// <exception cref="ArgumentException">The model holds no LoRA layer.</exception>
    /// <exception cref="InvalidOperationException">A layer is already merged, or its adapters are disabled (the message names it).</exception>
    /// <exception cref="NotSupportedException">A base cannot be written; no weight is left changed.</exception>
    public static void Merge(nn.Module root)
    {
        var layers = NonEmptyLayers(root, "merge");
        var blocked = layers.Where(l => l.Layer.Merged || !l.Layer.AdapterEnabled).ToList();
        if (blocked.Count > 0)
        {
            var (name, layer) = blocked[0];
            throw new InvalidOperationException(layer.Merged
                ? $"{blocked.Count} of {layers.Count} LoRA layers cannot merge (first: '{name}', which is already merged; merging again would add its adapter twice). Call Unmerge first."
                : $"{blocked.Count} of {layers.Count} LoRA layers cannot merge (first: '{name}', whose adapters are disabled). Enable them first.");
        }
        int done = 0;
        try
        {
            for (; done < layers.Count; done++) layers[done].Layer.Merge();
        }
        catch
        {
            for (int i = done - 1; i >= 0; i--) layers[i].Layer.Unmerge();
            throw;
        }
    }

    /// <summary>Unmerges every merged LoRA layer (layers that are not merged are left as they are).</summary>
    /// <param name="root">The model.</param>
    /// <exception cref="ArgumentException">The model holds no LoRA layer.</exception>
    /// <exception cref="InvalidOperationException">No layer is merged: there is nothing to unmerge (peft warns here; a call that changes nothing is reported, not ignored).</exception>
    public static void Unmerge(nn.Module root)
    {
        var merged = NonEmptyLayers(root, "unmerge").Where(l => l.Layer.Merged).ToList();
        if (merged.Count == 0) throw new InvalidOperationException("no LoRA layer of the model is merged; nothing to unmerge.");
        foreach (var (_, l) in merged) l.Unmerge();
    }

    private static IReadOnlyList<(string Name, LoraLayer Layer)> NonEmptyLayers(nn.Module root, string action)
    {
        var layers = Layers(root);
        if (layers.Count == 0)
            throw new ArgumentException($"the model ({root.GetType().Name}) holds no LoRA layer; nothing to {action}. Inject adapters first (LoraInjector.Inject).", nameof(root));
        return layers;
    }

    /// <summary>The LoRA layers of a tree with their full names, in tree order.</summary>
    /// <param name="root">The model.</param>
    public static IReadOnlyList<(string Name, LoraLayer Layer)> Layers(nn.Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return root.named_modules().Where(m => m.module is LoraLayer).Select(m => (m.name, (LoraLayer)m.module)).ToList();
    }

    /// <summary>The full names of the modules <paramref name="moduleNames"/> selects (the rule of <see cref="MarkTrainable"/>), sorted.</summary>
    internal static IReadOnlyList<string> SelectModules(nn.Module root, IEnumerable<string> moduleNames)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(moduleNames);
        var candidates = Candidates(root);
        var selected = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string target in moduleNames)
        {
            if (string.IsNullOrWhiteSpace(target)) throw new ArgumentException("module names must not be empty.", nameof(moduleNames));
            int found = 0;
            foreach (var (name, module) in candidates)
            {
                bool holds = module.named_parameters(recurse: false).Any();
                if (!TargetMatcher.IsTrainableTarget(name, holds, target)) continue;
                if (module is LoraLayer)
                    throw new ArgumentException($"'{target}' selects '{name}', which carries a LoRA adapter and cannot also be trained in full.", nameof(moduleNames));
                selected.Add(name);
                found++;
            }
            if (found == 0)
                throw new ArgumentException($"'{target}' selects no module of the model (module names include: {string.Join(", ", candidates.Select(c => c.Name).Take(12))}).", nameof(moduleNames));
        }
        return selected.ToList();
    }

    /// <summary>Modules outside LoRA layers' insides (their base_layer / lora_* children), in tree order.</summary>
    internal static List<(string Name, nn.Module Module)> Candidates(nn.Module root)
    {
        var loraNames = new List<string>();
        var result = new List<(string, nn.Module)>();
        foreach (var (name, module) in root.named_modules())
        {
            if (loraNames.Any(l => name.StartsWith(l + ".", StringComparison.Ordinal))) continue;
            if (module is LoraLayer) loraNames.Add(name);
            result.Add((name, module));
        }
        return result;
    }

    /// <summary>
    /// A module is either LoRA-wrapped or trained in full: a target that a <see cref="LoraOptions.ModulesToSave"/> entry
    /// also selects is an error naming both entries, raised before anything is wrapped.
    /// </summary>
    private static void CheckNoTargetIsTrainedInFull(IEnumerable<(string Name, nn.Module Module)> targets, LoraOptions options)
    {
        foreach (var (name, module) in targets)
        {
            bool holds = module is LoraLayer || module.named_parameters(recurse: false).Any();
            string? full = options.ModulesToSave.FirstOrDefault(t => TargetMatcher.IsTrainableTarget(name, holds, t));
            if (full is null) continue;
            string target = options.TargetRegex is { } r ? $"TargetRegex '{r}'"
                : options.ResolvedTargetModules is [LoraOptions.AllLinear] ? $"TargetModules '{LoraOptions.AllLinear}'"
                : $"TargetModules entry '{options.ResolvedTargetModules.First(t => TargetMatcher.SuffixMatch(name, t))}'";
            throw new ArgumentException(
                $"module '{name}' is selected both as a LoRA target ({target}) and as a module to train in full ({nameof(LoraOptions.ModulesToSave)} " +
                $"entry '{full}'; the LongLoRA recipe's TrainableExtras); a module is either wrapped by LoRA or trained in full: remove it from one of the two.",
                nameof(options));
        }
    }

    private static string DescribeTargets(LoraOptions options)
        => options.TargetRegex is { } r ? $"regex '{r}'" : $"[{string.Join(", ", options.ResolvedTargetModules)}]{(options.TargetModules is null ? " (the default)" : "")}";

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
}
