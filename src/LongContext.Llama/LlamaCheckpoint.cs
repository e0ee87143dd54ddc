using System.Text.Json.Nodes;
using LongContext.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// HF checkpoint folders in and out: <c>config.json</c> plus <c>model.safetensors</c> or a sharded
/// <c>model.safetensors.index.json</c>, with HF's parameter names.
/// </summary>
public static class LlamaCheckpoint
{
    /// <summary>Single-file weights name.</summary>
    public const string WeightsFile = "model.safetensors";
    /// <summary>Sharded weights index name.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>
    /// Every parameter a model of this config has, by HF name, with its shape (hidden = H, inner = I, vocab = V).
    /// </summary>
    /// <param name="config">Model config.</param>
    public static IReadOnlyDictionary<string, long[]> ExpectedParameters(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        long h = config.HiddenSize, i = config.IntermediateSize, v = config.VocabSize;
        long q = (long)config.NumAttentionHeads * config.HeadDim, kv = (long)config.NumKeyValueHeads * config.HeadDim;
        var result = new Dictionary<string, long[]>(StringComparer.Ordinal) { ["model.embed_tokens.weight"] = [v, h] };
        for (int l = 0; l < config.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            void Linear(string name, long outF, long inF, bool bias)
            {
                result[p + name + ".weight"] = [outF, inF];
                if (bias) result[p + name + ".bias"] = [outF];
            }
            Linear("self_attn.q_proj", q, h, config.AttentionBias);
            Linear("self_attn.k_proj", kv, h, config.AttentionBias);
            Linear("self_attn.v_proj", kv, h, config.AttentionBias);
            Linear("self_attn.o_proj", h, q, config.AttentionBias);
            Linear("mlp.gate_proj", i, h, config.MlpBias);
            Linear("mlp.up_proj", i, h, config.MlpBias);
            Linear("mlp.down_proj", h, i, config.MlpBias);
            result[p + "input_layernorm.weight"] = [h];
            result[p + "post_attention_layernorm.weight"] = [h];
        }
        result["model.norm.weight"] = [h];
        if (!config.TieWordEmbeddings) result["lm_head.weight"] = [v, h];
        return result;
    }

    /// <summary>
    /// Loads a model from an HF checkpoint folder. Every weight file's header is validated (see
    /// <see cref="SafetensorsFile"/>) and every tensor checked against the config before the model is created; each
    /// tensor is then read straight into its parameter, so loading needs host memory of about the model plus one
    /// tensor (a tensor stored in another dtype than the model's passes through one temporary of its stored size).
    /// </summary>
    /// <param name="folder">Folder with <c>config.json</c> and <c>model.safetensors</c> or <c>model.safetensors.index.json</c>.</param>
    /// <param name="dtype">Parameter dtype; null keeps the stored dtype of <c>model.embed_tokens.weight</c>.</param>
    /// <param name="device">Target device; null for the CPU.</param>
    /// <param name="acceptConfigFields">Extra <c>config.json</c> fields the caller vouches do not change the math.</param>
    /// <returns>The model in evaluation mode.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder holds no config or no weights.</exception>
    /// <exception cref="InvalidDataException">A file is malformed, or a tensor is missing, mis-shaped or unexpected
    /// (the file and key are named), or the config is unsupported.</exception>
    /// <exception cref="NotSupportedException">A tensor is stored in a dtype TorchSharp cannot hold.</exception>
    public static LlamaForCausalLM Load(string folder, ScalarType? dtype = null, Device? device = null, IEnumerable<string>? acceptConfigFields = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"checkpoint folder '{folder}' does not exist.");
        LlamaConfig config = LlamaConfig.Load(folder, acceptConfigFields);
        var files = WeightFiles(folder);
        var readers = new Dictionary<string, SafetensorsReader>(StringComparer.Ordinal);
        try
        {
            foreach (string file in files.Values.Distinct(StringComparer.Ordinal)) readers[file] = SafetensorsReader.Open(file);
            var expected = ExpectedParameters(config);
            Check(folder, expected, files, readers, config);
            const string embed = "model.embed_tokens.weight";
            SafetensorsEntry embedEntry = readers[files[embed]].Entries[embed];
            ScalarType type = dtype ?? embedEntry.ScalarType ?? throw new NotSupportedException(
                $"'{files[embed]}': tensor '{embed}' is stored as {embedEntry.Dtype}, which TorchSharp cannot hold; pass a dtype to load it as another type.");
            var model = new LlamaForCausalLM(config, type);
            try
            {
                var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
                foreach (string key in expected.Keys) readers[files[key]].ReadInto(key, parameters[key]);
                if (device is not null) model.to(device);
                model.eval();
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        finally
        {
            foreach (SafetensorsReader r in readers.Values) r.Dispose();
        }
    }

    /// <summary>
    /// Writes <c>config.json</c> and the weights that HF transformers loads with <c>LlamaForCausalLM.from_pretrained</c>:
    /// <c>model.safetensors</c>, or with <paramref name="maxShardBytes"/> HF's sharded layout
    /// (<c>model-00001-of-0000N.safetensors</c> plus <c>model.safetensors.index.json</c>, tensors in parameter order,
    /// a new shard when the next tensor would pass the limit, as <c>save_pretrained(max_shard_size=...)</c> splits).
    /// Every file is first written and flushed beside its target, then all are renamed into place, so a failure while
    /// writing leaves the previous folder as it was; weight files of an earlier save that the new layout replaces are
    /// removed only after the new files are in place (the disk needs room for the new files beside the old ones while
    /// saving). The model must hold plain HF parameters only (merge LoRA first).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="folder">Destination folder (created if absent; existing weight files are replaced).</param>
    /// <param name="maxShardBytes">Largest shard in bytes (a larger tensor gets a shard of its own); null writes one file.</param>
    /// <exception cref="InvalidOperationException">The model holds parameters outside HF's Llama names (e.g. unmerged LoRA).</exception>
    public static void Save(LlamaForCausalLM model, string folder, long? maxShardBytes = null) => Save(model, folder, maxShardBytes, wrap: null);

    /// <summary><see cref="Save(LlamaForCausalLM, string, long?)"/> with each file's stream wrapped (given the file name; tests inject failures).</summary>
    internal static void Save(LlamaForCausalLM model, string folder, long? maxShardBytes, Func<string, Stream, Stream>? wrap)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(folder);
        if (maxShardBytes is <= 0) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), maxShardBytes, "the shard size must be positive.");
        var expected = ExpectedParameters(model.Config);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);
        string[] extra = parameters.Keys.Where(k => !expected.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        if (extra.Length > 0)
            throw new InvalidOperationException(
                $"the model holds parameters that are not part of an HF Llama checkpoint ({string.Join(", ", extra.Take(5))}{(extra.Length > 5 ? ", ..." : "")}); merge or remove adapters before saving.");
        string[] missing = expected.Keys.Where(k => !parameters.ContainsKey(k)).ToArray();
        if (missing.Length > 0)
            throw new InvalidOperationException($"the model lacks HF parameters {string.Join(", ", missing.Take(5))}; was a projection replaced by a quantized layer?");

        AtomicFile.CreateFolder(folder);
        string index = Path.Combine(folder, IndexFile);
        var previousShards = File.Exists(index) ? ShardsNamedBy(index, folder) : [];
        JsonObject json = model.Config.ToJson();
        json["torch_dtype"] = DtypeName(parameters["model.embed_tokens.weight"].dtype);
        json.Remove("dtype");
        var ordered = expected.Keys.Select(k => (Key: k, Tensor: parameters[k])).ToList();
        Func<Stream, Stream>? Wrap(string name) => wrap is null ? null : s => wrap(name, s);

        // Every file is staged (written and flushed beside its target) before any is renamed into place, so a failure
        // while writing (the long part) leaves the previous folder exactly as it was.
        var names = new List<string>();
        AtomicFile.WriteTogether(staged =>
        {
            if (maxShardBytes is not long limit)
            {
                names.Add(WeightsFile);
                staged.Add(SafetensorsFile.Stage(Path.Combine(folder, WeightsFile), ordered.ToDictionary(p => p.Key, p => p.Tensor, StringComparer.Ordinal), wrap: Wrap(WeightsFile)));
            }
            else
            {
                var shards = Split(ordered, limit);
                var weightMap = new JsonObject();
                for (int s = 0; s < shards.Count; s++)
                {
                    string name = $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
                    names.Add(name);
                    staged.Add(SafetensorsFile.Stage(Path.Combine(folder, name), shards[s].ToDictionary(p => p.Key, p => p.Tensor, StringComparer.Ordinal), wrap: Wrap(name)));
                    foreach (var (key, _) in shards[s]) weightMap[key] = name;
                }
                var indexJson = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["total_size"] = ordered.Sum(p => p.Tensor.numel() * p.Tensor.ElementSize) },
                    ["weight_map"] = SortedCopy(weightMap),
                };
                names.Add(IndexFile);
                staged.Add(AtomicFile.StageText(index, indexJson.ToJsonString(Indented) + "\n", Wrap(IndexFile)));
            }
            staged.Add(AtomicFile.StageText(Path.Combine(folder, "config.json"), json.ToJsonString(Indented) + "\n", Wrap("config.json")));
        });
        RemoveStale(folder, [.. previousShards, WeightsFile, IndexFile], keep: names);
    }

    private static readonly System.Text.Json.JsonSerializerOptions Indented = new() { WriteIndented = true };


    /// <summary>HF's shard split: parameters in order, a new shard when the next one would pass the limit.</summary>
    private static List<List<(string Key, Tensor Tensor)>> Split(List<(string Key, Tensor Tensor)> ordered, long limit)
    {
        var shards = new List<List<(string Key, Tensor Tensor)>>();
        var current = new List<(string Key, Tensor Tensor)>();
        long size = 0;
        foreach (var p in ordered)
        {
            long bytes = p.Tensor.numel() * p.Tensor.ElementSize;
            if (current.Count > 0 && size + bytes > limit)
            {
                shards.Add(current);
                current = [];
                size = 0;
            }
            current.Add(p);
            size += bytes;
        }
        if (current.Count > 0 || shards.Count == 0) shards.Add(current);
        return shards;
    }

    private static JsonObject SortedCopy(JsonObject map)
    {
        var sorted = new JsonObject();
        foreach (var (k, v) in map.OrderBy(kv => kv.Key, StringComparer.Ordinal)) sorted[k] = v?.DeepClone();
        return sorted;
    }

    /// <summary>The shard file names an existing index lists (only plain file names in the folder; anything else is skipped).</summary>
    private static List<string> ShardsNamedBy(string index, string folder)
    {
        try { return WeightMap(index, folder).Values.Select(Path.GetFileName).OfType<string>().Distinct(StringComparer.Ordinal).ToList(); }
        catch (InvalidDataException) { return []; }
    }

    /// <summary>Removes weight files of an earlier save that the new layout does not use.</summary>
    private static void RemoveStale(string folder, IEnumerable<string> candidates, IEnumerable<string> keep)
    {
        var kept = new HashSet<string>(keep, StringComparer.Ordinal);
        foreach (string name in candidates.Distinct(StringComparer.Ordinal))
        {
            if (kept.Contains(name)) continue;
            string path = Path.Combine(folder, name);
            if (File.Exists(path)) File.Delete(path);
        }
    }

    private static string DtypeName(ScalarType t)
        => t is ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64 ? TorchDtypeNames.Name(t)
            : throw new InvalidOperationException($"parameters of dtype {t} cannot be saved as an HF checkpoint; expected a floating dtype.");

    /// <summary>Maps every stored tensor name to the file that holds it.</summary>
    private static Dictionary<string, string> WeightFiles(string folder)
    {
        string single = Path.Combine(folder, WeightsFile);
        string index = Path.Combine(folder, IndexFile);
        if (File.Exists(single))
        {
            using SafetensorsReader reader = SafetensorsReader.Open(single);
            return reader.Entries.Keys.ToDictionary(k => k, _ => single, StringComparer.Ordinal);
        }
        if (!File.Exists(index))
            throw new FileNotFoundException($"checkpoint folder '{folder}' holds neither {WeightsFile} nor {IndexFile}.", single);
        var map = WeightMap(index, folder);
        foreach (var (key, path) in map)
            if (!File.Exists(path)) throw new InvalidDataException($"'{index}': shard '{Path.GetFileName(path)}' for '{key}' does not exist.");
        return map;
    }

    /// <summary>Reads an index's <c>weight_map</c> (tensor name to shard path), refusing names outside the folder.</summary>
    private static Dictionary<string, string> WeightMap(string index, string folder)
    {
        System.Text.Json.JsonDocument document;
        string text;
        // Strict UTF-8 first: JsonDocument defers checking the bytes inside strings until they are read (an InvalidOperationException then).
        try { text = new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(index)); }
        catch (System.Text.DecoderFallbackException e) { throw new InvalidDataException($"'{index}' is not valid UTF-8: {e.Message}", e); }
        try { document = System.Text.Json.JsonDocument.Parse(text); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"'{index}' is not valid JSON: {e.Message}", e); }
        using (document)
        {
            if (document.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var weightMap)
                || weightMap.ValueKind != System.Text.Json.JsonValueKind.Object)
                throw new InvalidDataException($"'{index}' lacks the object 'weight_map'.");
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in weightMap.EnumerateObject())
            {
                string? file = entry.Value.ValueKind == System.Text.Json.JsonValueKind.String ? entry.Value.GetString() : null;
                if (string.IsNullOrEmpty(file) || file.Contains("..", StringComparison.Ordinal) || Path.IsPathRooted(file)
                    || file.Contains('/', StringComparison.Ordinal) || file.Contains('\\', StringComparison.Ordinal))
                    throw new InvalidDataException($"'{index}': weight_map['{entry.Name}'] must name a shard file in the folder; got {entry.Value.GetRawText()}.");
                if (!map.TryAdd(entry.Name, Path.Combine(folder, file)))
                    throw new InvalidDataException($"'{index}': weight_map names '{entry.Name}' twice.");
            }
            return map;
        }
    }

    private static void Check(string folder, IReadOnlyDictionary<string, long[]> expected, Dictionary<string, string> files,
        Dictionary<string, SafetensorsReader> readers, LlamaConfig config)
    {
        foreach (var (key, shape) in expected)
        {
            if (!files.TryGetValue(key, out string? file))
                throw new InvalidDataException($"checkpoint '{folder}' lacks tensor '{key}' (expected shape [{string.Join(", ", shape)}]).");
            if (!readers[file].Entries.TryGetValue(key, out SafetensorsEntry? stored))
                throw new InvalidDataException($"checkpoint '{folder}': index maps '{key}' to '{Path.GetFileName(file)}', which does not hold it.");
            if (!stored.Shape.SequenceEqual(shape))
                throw new InvalidDataException(
                    $"checkpoint '{folder}': tensor '{key}' has shape [{string.Join(", ", stored.Shape)}]; the config expects [{string.Join(", ", shape)}].");
            if (stored.ScalarType is null)
                throw new NotSupportedException($"checkpoint '{folder}': tensor '{key}' is stored as {stored.Dtype}, which TorchSharp cannot hold (quantized checkpoints other than bitsandbytes states are not read).");
            if (stored.Dtype is not ("F32" or "F16" or "BF16" or "F64"))
                throw new InvalidDataException($"checkpoint '{folder}': tensor '{key}' is stored as {stored.Dtype}; a Llama weight must be floating point (F32, F16, BF16 or F64).");
        }
        string[] unexpected = files.Keys
            .Where(k => !expected.ContainsKey(k) && !IsIgnorable(k, config))
            .OrderBy(k => k, StringComparer.Ordinal).ToArray();
        if (unexpected.Length > 0)
            throw new InvalidDataException(
                $"checkpoint '{folder}' holds tensors a {config.Architecture} with this config does not have: {string.Join(", ", unexpected.Take(5))}{(unexpected.Length > 5 ? ", ..." : "")}.");
    }

    /// <summary>Keys HF itself ignores: cached rotary frequencies and a stored copy of a tied lm_head.</summary>
    private static bool IsIgnorable(string key, LlamaConfig config)
        => key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) || (config.TieWordEmbeddings && key == "lm_head.weight");
}
