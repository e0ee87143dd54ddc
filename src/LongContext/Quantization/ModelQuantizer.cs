using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LongContext.Quantization;

/// <summary>
/// Whole-model 4-bit quantization (every <see cref="TorchSharp.Modules.Linear"/> but an exclusion list becomes a <see cref="Linear4Bit"/>),
/// peft's k-bit training preparation, and the memory a model holds.
/// </summary>
public static class ModelQuantizer
{
    /// <summary>
    /// Replaces every <see cref="TorchSharp.Modules.Linear"/> in the tree under <paramref name="root"/> (except excluded names) by a
    /// <see cref="Linear4Bit"/> quantized from its weight, in place; the float layers are disposed. A parent must hold
    /// each such child in a field typed so that it can hold a <see cref="Linear4Bit"/> (e.g. <c>Module&lt;Tensor, Tensor&gt;</c>).
    /// </summary>
    /// <param name="root">The model.</param>
    /// <param name="options">Quantization settings (QLoRA's NF4, block 64, double quant, <c>lm_head</c> excluded by default).</param>
    /// <returns>Which layers changed and the bytes before and after.</returns>
    /// <exception cref="InvalidOperationException">A parent holds a Linear in a field that cannot hold a Linear4Bit, or
    /// the Linear is the base of a LoRA layer (quantize before injecting LoRA); checked for every layer before any
    /// changes. Or no Linear is left to quantize (e.g. the model is quantized already, or every one is excluded).</exception>
    /// <exception cref="ArgumentException">An entry of a <see cref="QuantizationOptions.Exclude"/> list you set matches no
    /// Linear layer (named, with the layers); checked before any layer changes.</exception>
    /// <exception cref="ArgumentException">A weight to quantize holds NaN or an infinity: the message names the parameter
    /// (e.g. <c>'model.layers.0.mlp.up_proj.weight'</c>) and the first such element; checked before any layer changes,
    /// so the model is left as it was.</exception>
    public static QuantizationReport Quantize(Module root, QuantizationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        options ??= new QuantizationOptions();
        long before = StoredBytes(root);
        var targets = new List<(string Path, Module Parent, string Name, Linear Linear)>();
        var excluded = new List<string>();
        foreach (var item in Linears(root, ""))
        {
            if (options.IsExcluded(item.Path)) excluded.Add(item.Path);
            else targets.Add(item);
        }
        if (!options.ExcludeIsDefault)
        {
            var unmatched = options.Exclude.Where(e => !excluded.Any(path => QuantizationOptions.Matches(path, e))).ToList();
            if (unmatched.Count > 0)
            {
                var linears = targets.Select(t => t.Path).Concat(excluded).ToList();
                string shown = string.Join(", ", linears.Take(8)) + (linears.Count > 8 ? $", ... ({linears.Count} in all)" : "");
                throw new ArgumentException(
                    $"{nameof(QuantizationOptions.Exclude)} [{string.Join(", ", unmatched)}] match{(unmatched.Count == 1 ? "es" : "")} no Linear layer, so nothing would stay in full precision for " +
                    $"{(unmatched.Count == 1 ? "it" : "them")}; an entry names a layer's path or its last parts (the Linear layers: [{shown}]).",
                    nameof(options));
            }
        }
        if (targets.Count == 0)
        {
            int alreadyQuantized = new[] { root }.Concat(root.modules()).Count(m => m is Linear4Bit);
            throw new InvalidOperationException(
                $"the model ({root.GetType().Name}) holds no Linear layer to quantize" +
                (alreadyQuantized > 0 ? $"; {alreadyQuantized} layers are 4-bit already (a model is quantized once)" : "") +
                (excluded.Count > 0 ? $"; excluded: [{string.Join(", ", excluded)}]" : "") + ".");
        }
        foreach (var (path, _, _, linear) in targets)
            if (linear.weight is Tensor w) BlockwiseChecks.RequireFinite(w, nameof(root), path + ".weight");
        foreach (var (path, parent, name, _) in targets)
            ModuleTree.CheckReplaceChild(parent, name, typeof(Linear4Bit), path);   // every slot can take it, before any layer changes

        var quantized = new List<string>();
        long elements = 0;
        foreach (var (path, parent, name, linear) in targets)
        {
            var q = Linear4Bit.FromLinear(linear, options.Type, options.BlockSize, options.DoubleQuant, options.ComputeDtype);
            try { ModuleTree.ReplaceChild(parent, name, q, path); }
            catch { q.Dispose(); throw; }
            elements += q.InFeatures * q.OutFeatures;
            quantized.Add(path);
            linear.Dispose();
        }
        return new QuantizationReport(quantized, excluded, elements, before, StoredBytes(root));
    }

    /// <summary>
    /// peft's <c>prepare_model_for_kbit_training</c> (without its gradient-checkpointing switch): every parameter is
    /// frozen, and every float16/bfloat16 parameter that is not 4-bit (norms, embeddings, excluded heads, biases) is
    /// upcast to float32 for stable training. 4-bit weights and their compute dtype are left as they are.
    /// </summary>
    /// <param name="root">The (quantized) model.</param>
    public static void PrepareForKbitTraining(Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (Module m in new[] { root }.Concat(root.modules()))
        {
            foreach (var (name, p) in m.named_parameters(recurse: false).ToList())
            {
                if (p.dtype is ScalarType.Float16 or ScalarType.BFloat16)
                {
                    var upcast = new Parameter(p.detach().to(ScalarType.Float32), requires_grad: false);
                    ModuleTree.ReplaceParameter(m, name, upcast);
                    p.Dispose();
                }
            }
        }
        foreach (var p in root.parameters()) p.requires_grad = false;
    }

    /// <summary>
    /// Bytes a model holds: every distinct parameter and buffer plus the packed codes and scales of each
    /// <see cref="Linear4Bit"/> (whose 4-bit state is not a TorchSharp buffer).
    /// </summary>
    /// <param name="root">The model.</param>
    public static long StoredBytes(Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var seen = new HashSet<IntPtr>();
        long total = 0;
        foreach (var p in root.parameters())
            if (seen.Add(p.Handle)) total += p.numel() * p.ElementSize;
        foreach (var b in root.buffers())
            if (seen.Add(b.Handle)) total += b.numel() * b.ElementSize;
        foreach (Module m in new[] { root }.Concat(root.modules()))
            if (m is Linear4Bit q) total += q.State.StoredBytes;
        return total;
    }

    private static IEnumerable<(string Path, Module Parent, string Name, Linear Linear)> Linears(Module parent, string prefix)
    {
        foreach (var (name, child) in parent.named_children().ToList())
        {
            string path = prefix.Length == 0 ? name : $"{prefix}.{name}";
            if (child is Linear linear) yield return (path, parent, name, linear);
            else foreach (var item in Linears(child, path).ToList()) yield return item;
        }
    }
}
