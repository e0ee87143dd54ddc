using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// Saves and loads LoRA adapters in peft's format: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c>
/// with peft's keys (<c>base_model.model.&lt;module&gt;.lora_A.weight</c>, adapter name stripped).
/// </summary>
public static class PeftAdapter
{
    /// <summary>File name of the adapter weights.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>Key prefix peft puts before module names.</summary>
    public const string KeyPrefix = "base_model.model.";

    /// <summary>
    /// peft's <c>EMBEDDING_LAYER_NAMES</c>: when <c>target_modules</c> names one of them, peft's <c>save_pretrained</c>
    /// (<c>save_embedding_layers="auto"</c>) also writes the base layer of the model's input and output embeddings
    /// that carry LoRA (<c>...embed_tokens.base_layer.weight</c>, <c>...lm_head.base_layer.weight</c>).
    /// </summary>
    internal static readonly IReadOnlyList<string> EmbeddingLayerNames = ["embed_tokens", "lm_head"];

    /// <summary>
    /// Writes one adapter of a model: config (r, lora_alpha, lora_dropout, target_modules, use_rslora, bias,
    /// init_lora_weights, modules_to_save, base_model_name_or_path and peft's other keys at neutral values) and weights
    /// (LoRA A/B, biases per the bias mode, the modules the adapter's <see cref="LoraOptions.ModulesToSave"/> selects
    /// under their own state-dict keys and, as peft does when an embedding layer is targeted, the base layers of the
    /// LoRA-wrapped input and output embeddings).
    /// </summary>
    /// <param name="root">The model carrying the adapter; module names in the file are relative to it.</param>
    /// <param name="folder">Destination folder (created if absent).</param>
    /// <param name="baseModelNameOrPath">Written as <c>base_model_name_or_path</c>.</param>
    /// <param name="adapterName">The adapter to save.</param>
    /// <exception cref="ArgumentException">No LoRA layer holds the adapter.</exception>
    /// <exception cref="NotSupportedException">Layers hold the adapter with different options; per-layer patterns are not written.</exception>
    /// <remarks>
    /// The input embeddings are the <see cref="LoraEmbedding"/> layers, the output embeddings the LoRA layers named
    /// <c>lm_head</c> (what transformers' <c>get_input_embeddings</c>/<c>get_output_embeddings</c> return for LLaMA-family
    /// models); as in peft, only those over a TorchSharp <c>Linear</c> or <c>Embedding</c> are written.
    /// </remarks>
    public static void Save(nn.Module root, string folder, string? baseModelNameOrPath = null, string adapterName = "default")
    {
        // Both files are written before either replaces its predecessor: a failure leaves the previous adapter whole.
        AtomicFile.WriteTogether(staged => Stage(root, folder, baseModelNameOrPath, adapterName, staged));
    }

    /// <summary>
    /// <see cref="Save"/>'s two files written beside their targets and added to <paramref name="staged"/>, not yet
    /// renamed over them: for <see cref="AtomicFile.WriteTogether"/>, with files of the caller's own, as one unit.
    /// </summary>
    internal static void Stage(nn.Module root, string folder, string? baseModelNameOrPath, string adapterName, List<StagedFile> staged)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(folder);
        var layers = LayersHolding(root, adapterName);
        if (layers.Count == 0) throw new ArgumentException($"no LoRA layer of the model holds adapter '{adapterName}'.", nameof(adapterName));
        var options = layers[0].Layer.GetOptions(adapterName);
        foreach (var (name, layer) in layers)
        {
            var o = layer.GetOptions(adapterName);
            if (o.Rank != options.Rank || o.Alpha != options.Alpha || o.Dropout != options.Dropout || o.UseRsLora != options.UseRsLora
                || o.Bias != options.Bias || o.Init != options.Init || !o.ModulesToSave.SequenceEqual(options.ModulesToSave))
                throw new NotSupportedException(
                    $"layer '{name}' holds adapter '{adapterName}' with r={o.Rank}, alpha={o.Alpha}, dropout={o.Dropout}, rslora={o.UseRsLora}, bias={o.Bias}, init={o.Init}, modules_to_save=[{string.Join(", ", o.ModulesToSave)}], " +
                    $"unlike '{layers[0].Name}' (r={options.Rank}, alpha={options.Alpha}, dropout={options.Dropout}, rslora={options.UseRsLora}, bias={options.Bias}, init={options.Init}, modules_to_save=[{string.Join(", ", options.ModulesToSave)}]); per-layer patterns are not written.");
        }

        var candidates = LoraInjector.Candidates(root).Select(c => c.Name).ToList();
        var trainable = options.ModulesToSave.Count == 0 ? [] : LoraInjector.SelectModules(root, options.ModulesToSave);
        var targets = TargetMatcher.Compact(layers.Select(l => l.Name).ToList(), candidates, TargetMatcher.SuffixMatch);
        bool embeddingTargeted = targets.Any(EmbeddingLayerNames.Contains);
        var savedBases = embeddingTargeted ? layers.Where(l => IsEmbeddingLayer(l) && HasDenseBase(l.Layer)).ToList() : [];
        var config = new PeftAdapterConfigJson
        {
            BaseModelNameOrPath = baseModelNameOrPath,
            R = options.Rank,
            LoraAlpha = options.Alpha,
            LoraDropout = options.Dropout,
            UseRsLora = options.UseRsLora,
            Bias = BiasName(options.Bias),
            TargetModules = JsonSerializer.SerializeToNode(targets),
            ModulesToSave = trainable.Count == 0 ? null : TargetMatcher.Compact(trainable.ToList(), candidates, (n, t) => n.EndsWith(t, StringComparison.Ordinal)),
            InitLoraWeights = InitNode(options.Init),
        };

        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, tensor) in AdapterTensors(root, layers, options.Bias, trainable, adapterName)) tensors[key] = tensor.detach();
        foreach (var (key, tensor) in BaseLayerTensors(savedBases)) tensors[key] = tensor.detach();
        AtomicFile.CreateFolder(folder);
        staged.Add(SafetensorsFile.Stage(Path.Combine(folder, WeightsFileName), tensors));
        staged.Add(config.Stage(Path.Combine(folder, PeftAdapterConfigJson.FileName)));
    }

    /// <summary>
    /// Reads a peft LoRA adapter folder, injects the adapter per its config, and copies its weights in:
    /// modules_to_save tensors replace the model's own (those modules become trainable), and base-layer tensors
    /// (<c>...embed_tokens.base_layer.weight</c>, which peft writes when an embedding layer is targeted) restore the
    /// wrapped base layer.
    /// </summary>
    /// <param name="root">The base model (module names as in the HF checkpoint).</param>
    /// <param name="folder">Folder holding <c>adapter_config.json</c> and <c>adapter_model.safetensors</c>.</param>
    /// <param name="adapterName">Name to give the adapter in the model.</param>
    /// <param name="resolve">Describes layers that are not built-in TorchSharp ones (e.g. <c>QLora.Resolve</c>); see <see cref="LoraInjector.Inject"/>.</param>
    /// <param name="autocastAdapterDtype">
    /// Keep the adapter in float32 over a half-precision base (peft's <c>autocast_adapter_dtype</c>, default true);
    /// false: in the base weight's dtype.
    /// </param>
    /// <returns>The injection report.</returns>
    /// <exception cref="NotSupportedException">The config uses a peft option that changes the math and is not implemented.</exception>
    /// <exception cref="InvalidDataException">A file is malformed, a config value is out of range, the targets match no module of the
    /// model, keys are missing or unexpected, or a tensor's shape or rank differs from the model's or the config's (the file is named).
    /// A refused adapter leaves the model as it was given: no module wrapped, no adapter added, every <c>requires_grad</c> as before.</exception>
    public static LoraInjectionReport Load(nn.Module root, string folder, string adapterName = "default", LoraBaseResolver? resolve = null,
                                           bool autocastAdapterDtype = true)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(folder);
        string configPath = Path.Combine(folder, PeftAdapterConfigJson.FileName);
        var config = PeftAdapterConfigJson.Read(configPath);
        LoraOptions options;
        try { options = ToOptions(config) with { AutocastAdapterDtype = autocastAdapterDtype }; }
        catch (ArgumentException e) { throw new InvalidDataException($"'{configPath}': {e.Message}", e); }
        string weightsPath = Path.Combine(folder, WeightsFileName);
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"adapter weights '{weightsPath}' do not exist (only safetensors adapters are read).", weightsPath);
        // Before injecting allocates r x width per layer: the file's tensors must carry the config's rank.
        using (var header = SafetensorsReader.Open(weightsPath)) CheckRank(header, options.Rank, configPath);

        LoraInjectionReport report;
        Action undo;
        try { (report, undo) = LoraInjector.InjectUndoable(root, options, adapterName, resolve); }
        catch (ArgumentException e) when (e.ParamName == "options") { throw new InvalidDataException($"'{configPath}' does not fit the model: {e.Message}", e); }
        try
        {
            CopyWeights(root, weightsPath, options, report, adapterName);
        }
        catch
        {
            undo();     // the weights do not fit: the model is left as it was given (tensors are copied only after every check)
            throw;
        }
        return report with { Parameters = ParameterCounter.Count(root) };
    }

    /// <summary>Checks the weights file against the injected adapter (keys, shapes), then copies every tensor in.</summary>
    private static void CopyWeights(nn.Module root, string weightsPath, LoraOptions options, LoraInjectionReport report, string adapterName)
    {
        var layers = LayersHolding(root, adapterName);
        var expected = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, tensor) in AdapterTensors(root, layers, options.Bias, report.TrainableModules, adapterName)) expected[key] = tensor;
        var optional = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, tensor) in BaseLayerTensors(layers.Where(l => HasDenseBase(l.Layer))))
            if (!expected.ContainsKey(key)) optional[key] = tensor;

        var loaded = SafetensorsFile.Load(weightsPath);
        try
        {
            var unexpected = loaded.Keys.Where(k => !expected.ContainsKey(k) && !optional.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            if (unexpected.Count > 0)
                throw new InvalidDataException($"'{weightsPath}' holds {unexpected.Count} keys that map to no adapter tensor of the model, e.g. '{unexpected[0]}' (expected keys like '{expected.Keys.First()}').");
            var missing = expected.Keys.Where(k => !loaded.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
                throw new InvalidDataException($"'{weightsPath}' lacks {missing.Count} keys the config implies: {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? ", ..." : "")}.");
            var targets = expected.Concat(optional.Where(kv => loaded.ContainsKey(kv.Key))).ToList();
            foreach (var (key, target) in targets)
            {
                var source = loaded[key];
                if (!source.shape.SequenceEqual(target.shape))
                    throw new InvalidDataException($"'{key}' has shape [{string.Join(", ", source.shape)}] in '{weightsPath}' but the model expects [{string.Join(", ", target.shape)}].");
            }
            using (no_grad())
            {
                foreach (var (key, target) in targets)
                {
                    using var converted = loaded[key].to(target.dtype, target.device);
                    target.copy_(converted);
                }
            }
        }
        finally
        {
            foreach (var t in loaded.Values) t.Dispose();
        }
    }

    /// <summary>Every LoRA A/B tensor in the weights file has the config's rank (and there is at least one).</summary>
    private static void CheckRank(SafetensorsReader weights, int rank, string configPath)
    {
        int seen = 0;
        foreach (var (key, entry) in weights.Entries)
        {
            long? r = key.EndsWith(".lora_A.weight", StringComparison.Ordinal) || key.EndsWith(".lora_embedding_A", StringComparison.Ordinal)
                ? entry.Shape.FirstOrDefault(-1)
                : key.EndsWith(".lora_B.weight", StringComparison.Ordinal) || key.EndsWith(".lora_embedding_B", StringComparison.Ordinal)
                    ? entry.Shape.LastOrDefault(-1)
                    : null;
            if (r is null) continue;
            seen++;
            if (entry.Shape.Length != 2 || r != rank)
                throw new InvalidDataException(
                    $"'{weights.Path}': '{key}' has shape [{string.Join(", ", entry.Shape)}], which does not carry the rank r={rank} of '{configPath}'.");
        }
        if (seen == 0)
            throw new InvalidDataException($"'{weights.Path}' holds no LoRA tensor (keys ending in lora_A.weight / lora_B.weight); it is not a LoRA adapter.");
    }

    /// <summary>Converts a peft config to options, refusing options that change the math and are not implemented.</summary>
    /// <param name="config">A parsed <c>adapter_config.json</c>.</param>
    /// <exception cref="NotSupportedException">An unsupported option is set.</exception>
    public static LoraOptions ToOptions(PeftAdapterConfigJson config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var refusals = new List<string>();
        if (config.PeftType != "LORA") refusals.Add($"peft_type '{config.PeftType}' (only LORA)");
        if (config.UseDora) refusals.Add("use_dora=true (DoRA)");
        if (config.FanInFanOut) refusals.Add("fan_in_fan_out=true (transposed Conv1D weights)");
        if (config.LoraBias) refusals.Add("lora_bias=true (a bias on B)");
        if (config.UseQalora) refusals.Add("use_qalora=true");
        if (config.RankPattern is { Count: > 0 }) refusals.Add($"rank_pattern {JsonSerializer.Serialize(config.RankPattern)} (per-module ranks)");
        if (config.AlphaPattern is { Count: > 0 }) refusals.Add($"alpha_pattern {JsonSerializer.Serialize(config.AlphaPattern)} (per-module alphas)");
        if (IsSet(config.LayersToTransform)) refusals.Add($"layers_to_transform {config.LayersToTransform!.ToJsonString()}");
        if (IsSet(config.LayersPattern)) refusals.Add($"layers_pattern {config.LayersPattern!.ToJsonString()}");
        if (IsSet(config.ExcludeModules)) refusals.Add($"exclude_modules {config.ExcludeModules!.ToJsonString()}");
        if (IsSet(config.LayerReplication)) refusals.Add($"layer_replication {config.LayerReplication!.ToJsonString()}");
        if (IsSet(config.TargetParameters)) refusals.Add($"target_parameters {config.TargetParameters!.ToJsonString()}");
        if (IsSet(config.TrainableTokenIndices)) refusals.Add($"trainable_token_indices {config.TrainableTokenIndices!.ToJsonString()}");
        LoraInit init = LoraInit.KaimingUniform;
        switch (config.InitLoraWeights)
        {
            case null: break;                                                   // absent: peft's default, true
            case JsonValue v when v.TryGetValue(out bool flag): init = flag ? LoraInit.KaimingUniform : LoraInit.Random; break;
            case JsonValue v when v.TryGetValue(out string? method) && method == "gaussian": init = LoraInit.Gaussian; break;
            case JsonValue v when v.TryGetValue(out string? method):
                refusals.Add($"init_lora_weights '{method}' (an initialisation this library does not implement; several change the base weights)");
                break;
            default: refusals.Add($"init_lora_weights {config.InitLoraWeights.ToJsonString()} (expected true, false or a method name)"); break;
        }
        foreach (var (key, value) in config.Extra ?? [])
        {
            if (MathNeutralKeys.Contains(key)) continue;
            if (value.ValueKind is JsonValueKind.Null or JsonValueKind.False) continue;
            if (value.ValueKind == JsonValueKind.Object && !value.EnumerateObject().Any()) continue;
            if (value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 0) continue;
            refusals.Add($"{key}={value.GetRawText()} (unknown option)");
        }
        if (refusals.Count > 0)
            throw new NotSupportedException($"the peft adapter config uses options this library does not implement: {string.Join("; ", refusals)}.");

        var bias = config.Bias switch
        {
            "none" => LoraBias.None,
            "all" => LoraBias.All,
            "lora_only" => LoraBias.LoraOnly,
            _ => throw new NotSupportedException($"bias '{config.Bias}' is not one of none, all, lora_only."),
        };
        var options = new LoraOptions
        {
            Rank = config.R,
            Alpha = config.LoraAlpha,
            Dropout = config.LoraDropout,
            UseRsLora = config.UseRsLora,
            Bias = bias,
            Init = init,
            ModulesToSave = config.ModulesToSave ?? [],
        };
        return config.TargetModules switch
        {
            JsonArray list => options with { TargetModules = list.Select(n => n!.GetValue<string>()).ToArray() },
            JsonValue s when s.GetValue<string>() == LoraOptions.AllLinear => options with { TargetModules = [LoraOptions.AllLinear] },
            JsonValue s => options with { TargetRegex = s.GetValue<string>() },
            _ => throw new NotSupportedException("target_modules is missing; it must be a list of names, a regex or 'all-linear'."),
        };
    }

    /// <summary>Keys peft writes that do not change the math (bookkeeping, integrations, defaults of other methods).</summary>
    private static readonly HashSet<string> MathNeutralKeys = new(StringComparer.Ordinal)
    {
        "peft_version", "auto_mapping", "megatron_core", "qalora_group_size", "ensure_weight_tying", "loftq_config",
    };

    private static bool IsSet(JsonNode? node)
        => node is not null && !(node is JsonArray { Count: 0 }) && !(node is JsonObject { Count: 0 });

    private static string BiasName(LoraBias bias) => bias switch
    {
        LoraBias.All => "all",
        LoraBias.LoraOnly => "lora_only",
        _ => "none",
    };

    private static JsonNode InitNode(LoraInit init) => init switch
    {
        LoraInit.Gaussian => JsonValue.Create("gaussian"),
        LoraInit.Random => JsonValue.Create(false),
        _ => JsonValue.Create(true),
    };

    private static List<(string Name, LoraLayer Layer)> LayersHolding(nn.Module root, string adapterName)
        => LoraInjector.Layers(root).Where(l => l.Layer.AdapterNames.Contains(adapterName)).ToList();

    private static bool IsEmbeddingLayer((string Name, LoraLayer Layer) l)
        => l.Layer is LoraEmbedding || TargetMatcher.LastSegment(l.Name) == "lm_head";

    // peft's has_valid_embedding_base_layer: the base is a plain Linear or Embedding (a dense, loadable state).
    private static bool HasDenseBase(LoraLayer layer) => layer.BaseLayer is TorchSharp.Modules.Linear or TorchSharp.Modules.Embedding;

    /// <summary>The adapter's tensors under peft keys: the model's own parameters (copy into them, or detach to save).</summary>
    private static IEnumerable<(string Key, Tensor Tensor)> AdapterTensors(nn.Module root, List<(string Name, LoraLayer Layer)> layers,
        LoraBias bias, IReadOnlyList<string> trainable, string adapterName)
    {
        foreach (var (name, layer) in layers)
        {
            var (keyA, keyB) = layer.PeftKeys;
            yield return ($"{KeyPrefix}{name}.{keyA}", layer.LoraA(adapterName));
            yield return ($"{KeyPrefix}{name}.{keyB}", layer.LoraB(adapterName));
        }
        var layerNames = layers.Select(l => l.Name).ToList();
        if (bias != LoraBias.None)
        {
            foreach (var (pname, p) in root.named_parameters())
            {
                if (TargetMatcher.LastSegment(pname) != "bias" || pname.Contains(".lora_", StringComparison.Ordinal)) continue;
                bool include = bias == LoraBias.All || layerNames.Any(l => pname == l + ".base_layer.bias");
                if (include) yield return (KeyPrefix + pname, p);
            }
        }
        foreach (string m in trainable)
            foreach (var (k, t) in ModuleTree.Find(root, m).state_dict())
                yield return ($"{KeyPrefix}{m}.{k}", t);
    }

    /// <summary>The base layers' state under peft's keys (<c>...&lt;layer&gt;.base_layer.weight</c>): the model's own tensors.</summary>
    private static IEnumerable<(string Key, Tensor Tensor)> BaseLayerTensors(IEnumerable<(string Name, LoraLayer Layer)> layers)
    {
        foreach (var (name, layer) in layers)
            foreach (var (k, t) in layer.BaseLayer.state_dict())
                yield return ($"{KeyPrefix}{name}.base_layer.{k}", t);
    }
}
