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

    /// <summary>Loads a model from an HF checkpoint folder.</summary>
    /// <param name="folder">Folder with <c>config.json</c> and <c>model.safetensors</c> or <c>model.safetensors.index.json</c>.</param>
    /// <param name="dtype">Parameter dtype; null keeps the stored dtype of <c>model.embed_tokens.weight</c>.</param>
    /// <param name="device">Target device; null for the CPU.</param>
    /// <param name="acceptConfigFields">Extra <c>config.json</c> fields the caller vouches do not change the math.</param>
    /// <returns>The model in evaluation mode.</returns>
    /// <exception cref="InvalidDataException">A tensor is missing, mis-shaped or unexpected (the key is named), or
    /// the config is unsupported.</exception>
    public static LlamaForCausalLM Load(string folder, ScalarType? dtype = null, Device? device = null, IEnumerable<string>? acceptConfigFields = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"checkpoint folder '{folder}' does not exist.");
        LlamaConfig config = LlamaConfig.Load(folder, acceptConfigFields);
        var files = WeightFiles(folder);
        var expected = ExpectedParameters(config);
        Check(folder, expected, files, config);

        ScalarType type = dtype ?? StoredDtype(files["model.embed_tokens.weight"], "model.embed_tokens.weight");
        var model = new LlamaForCausalLM(config, type);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        using (torch.no_grad())
        {
            foreach (var group in expected.Keys.GroupBy(k => files[k]))
            {
                var tensors = SafetensorsFile.Load(group.Key, group);
                try
                {
                    foreach (string key in group) parameters[key].copy_(tensors[key]);
                }
                finally
                {
                    foreach (var t in tensors.Values) t.Dispose();
                }
            }
        }
        if (device is not null) model.to(device);
        model.eval();
        return model;
    }

    /// <summary>
    /// Writes <c>config.json</c> and <c>model.safetensors</c> that HF transformers loads with
    /// <c>LlamaForCausalLM.from_pretrained</c>. The model must hold plain HF parameters only (merge LoRA first).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="folder">Destination folder (created if absent; existing weight files are replaced).</param>
    /// <exception cref="InvalidOperationException">The model holds parameters outside HF's Llama names (e.g. unmerged LoRA).</exception>
    public static void Save(LlamaForCausalLM model, string folder)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(folder);
        var expected = ExpectedParameters(model.Config);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);
        string[] extra = parameters.Keys.Where(k => !expected.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        if (extra.Length > 0)
            throw new InvalidOperationException(
                $"the model holds parameters that are not part of an HF Llama checkpoint ({string.Join(", ", extra.Take(5))}{(extra.Length > 5 ? ", ..." : "")}); merge or remove adapters before saving.");
        string[] missing = expected.Keys.Where(k => !parameters.ContainsKey(k)).ToArray();
        if (missing.Length > 0)
            throw new InvalidOperationException($"the model lacks HF parameters {string.Join(", ", missing.Take(5))}; was a projection replaced by a quantized layer?");

        Directory.CreateDirectory(folder);
        string index = Path.Combine(folder, IndexFile);
        if (File.Exists(index)) File.Delete(index);
        JsonObject json = model.Config.ToJson();
        json["torch_dtype"] = DtypeName(parameters["model.embed_tokens.weight"].dtype);
        json.Remove("dtype");
        File.WriteAllText(Path.Combine(folder, "config.json"), json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
        SafetensorsFile.Save(Path.Combine(folder, WeightsFile), parameters);
    }

    private static string DtypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float64 => "float64",
        _ => throw new InvalidOperationException($"parameters of dtype {t} cannot be saved as an HF checkpoint; expected a floating dtype."),
    };

    /// <summary>Maps every stored tensor name to the file that holds it.</summary>
    private static Dictionary<string, string> WeightFiles(string folder)
    {
        string single = Path.Combine(folder, WeightsFile);
        string index = Path.Combine(folder, IndexFile);
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (File.Exists(single))
        {
            foreach (string key in SafetensorsFile.ReadShapes(single).Keys) map[key] = single;
            return map;
        }
        if (!File.Exists(index))
            throw new FileNotFoundException($"checkpoint folder '{folder}' holds neither {WeightsFile} nor {IndexFile}.", single);
        JsonObject? json;
        try { json = JsonNode.Parse(File.ReadAllText(index)) as JsonObject; }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"'{index}' is not valid JSON: {e.Message}", e); }
        if (json?["weight_map"] is not JsonObject weightMap)
            throw new InvalidDataException($"'{index}' lacks the object 'weight_map'.");
        foreach (var (key, value) in weightMap)
        {
            string? file = value?.GetValueKind() == System.Text.Json.JsonValueKind.String ? value.GetValue<string>() : null;
            if (string.IsNullOrEmpty(file) || file.Contains("..", StringComparison.Ordinal) || Path.IsPathRooted(file))
                throw new InvalidDataException($"'{index}': weight_map['{key}'] must name a shard file in the folder; got {value?.ToJsonString() ?? "null"}.");
            string path = Path.Combine(folder, file);
            if (!File.Exists(path)) throw new InvalidDataException($"'{index}': shard '{file}' for '{key}' does not exist.");
            map[key] = path;
        }
        return map;
    }

    private static void Check(string folder, IReadOnlyDictionary<string, long[]> expected, Dictionary<string, string> files, LlamaConfig config)
    {
        var shapes = new Dictionary<string, IReadOnlyDictionary<string, long[]>>(StringComparer.Ordinal);
        foreach (var (key, shape) in expected)
        {
            if (!files.TryGetValue(key, out string? file))
                throw new InvalidDataException($"checkpoint '{folder}' lacks tensor '{key}' (expected shape [{string.Join(", ", shape)}]).");
            if (!shapes.TryGetValue(file, out var fileShapes)) shapes[file] = fileShapes = SafetensorsFile.ReadShapes(file);
            if (!fileShapes.TryGetValue(key, out long[]? stored))
                throw new InvalidDataException($"checkpoint '{folder}': index maps '{key}' to '{Path.GetFileName(file)}', which does not hold it.");
            if (!stored.SequenceEqual(shape))
                throw new InvalidDataException(
                    $"checkpoint '{folder}': tensor '{key}' has shape [{string.Join(", ", stored)}]; the config expects [{string.Join(", ", shape)}].");
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

    private static ScalarType StoredDtype(string file, string key)
    {
        var t = SafetensorsFile.Load(file, [key]);
        try { return t[key].dtype; }
        finally { foreach (var x in t.Values) x.Dispose(); }
    }
}
