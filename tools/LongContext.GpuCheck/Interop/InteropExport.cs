using LongContext.GpuCheck.Results;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Training;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Interop;

/// <summary>
/// The .NET half of ".NET writes, Python reads": for each case, the fixture's tiny Llama prepared with
/// <see cref="LongLora.Prepare"/>, its LoRA B and trainable extras set to seeded random values (a fresh adapter's
/// B is zero and would prove nothing), then <see cref="LongLora.SaveAdapter"/>, <see cref="LongLora.SaveMerged"/> and
/// the model's logits (evaluation mode, full attention) on the fixture's input ids. The QLoRA case also writes its
/// dequantized NF4 base, which peft loads in place of a bitsandbytes base. scripts/gpu/interop.py check-dotnet reads it.
/// </summary>
internal static class InteropExport
{
    private sealed record Case(string Name, string Description, LongLoraOptions Options);

    private static IEnumerable<Case> Cases()
    {
        yield return new("lora-qkvo-extras", "LongLoRA recipe: LoRA r8/16 on q,k,v,o + embed,norm as modules_to_save",
            new LongLoraOptions { TargetContextLength = 1024 });
        yield return new("rslora-all-linear", "rsLoRA r8/16 on all-linear, no extras",
            new LongLoraOptions { TargetContextLength = 1024, TrainableExtras = [], Lora = new LoraOptions { Rank = 8, Alpha = 16, UseRsLora = true, TargetModules = [LoraOptions.AllLinear] } });
        yield return new("lora-lm-head", "LoRA r8/16 on lm_head, q_proj, v_proj (peft saves lm_head's base layer)",
            new LongLoraOptions { TargetContextLength = 1024, TrainableExtras = [], Lora = new LoraOptions { Rank = 8, Alpha = 16, TargetModules = ["lm_head", "q_proj", "v_proj"] } });
        yield return new("lora-embed-tokens", "LoRA r8/16 on embed_tokens, q_proj, v_proj (peft saves the embedding base layers)",
            new LongLoraOptions { TargetContextLength = 1024, TrainableExtras = [], Lora = new LoraOptions { Rank = 8, Alpha = 16, TargetModules = ["embed_tokens", "q_proj", "v_proj"] } });
        yield return new("qlora-all-linear-extras", "LongQLoRA: NF4 base (block 64, double quant), LoRA r8/16 on all-linear + embed,norm",
            new LongLoraOptions { TargetContextLength = 1024, Quantization = TinyBase.Nf4 });
    }

    public static void Run(CheckRunner runner, string fixtures, string folder)
    {
        Directory.CreateDirectory(folder);
        string baseFolder = TinyBase.Folder(fixtures);
        TinyBase.CopyFolder(baseFolder, Path.Combine(folder, "base"));
        var expected = SafetensorsFile.Load(Path.Combine(baseFolder, "expected.safetensors"), ["input_ids"]);
        SafetensorsFile.Save(Path.Combine(folder, "inputs.safetensors"), expected);
        var manifest = new InteropManifest { Writer = "dotnet", Inputs = "inputs.safetensors" };
        foreach (Case c in Cases())
        {
            runner.Run("interop", $"dotnet export {c.Name}", "float32", r =>
            {
                manifest.Variants.Add(Export(runner.Device, fixtures, folder, c, expected["input_ids"]));
                r.True("written", true, c.Description);
            });
        }
        manifest.Write(folder);
    }

    private static InteropVariant Export(Device device, string fixtures, string folder, Case c, Tensor ids)
    {
        string dir = Path.Combine(folder, c.Name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        bool nf4 = c.Options.Quantization is not null;
        using var model = TinyBase.Load(fixtures, "dense", device);
        LongLora.Prepare(model, c.Options);
        if (nf4)
        {
            // The NF4 base as float weights, before any extra is changed: what peft loads without bitsandbytes.
            LoraInjector.SetAdapterEnabled(model, false);
            LongLora.SaveMerged(model, Path.Combine(folder, "qlora_base"));
            LoraInjector.SetAdapterEnabled(model, true);
        }
        Randomize(model, seed: 5000 + c.Name.Length);
        model.eval();
        LongLora.SaveAdapter(model, Path.Combine(dir, "adapter"), baseModelNameOrPath: nf4 ? "qlora_base" : "base");
        LongLora.SaveMerged(model, Path.Combine(dir, "merged"));
        using (no_grad())
        {
            using Tensor logits = model.forward(ids.to(device)).cpu();
            SafetensorsFile.Save(Path.Combine(dir, "expected.safetensors"), new Dictionary<string, Tensor> { ["logits"] = logits });
        }
        return new InteropVariant
        {
            Name = c.Name,
            BaseKind = nf4 ? "nf4" : "dense",
            Base = nf4 ? "qlora_base" : "base",
            Adapter = $"{c.Name}/adapter",
            Merged = $"{c.Name}/merged",
            Expected = $"{c.Name}/expected.safetensors",
            Description = c.Description,
        };
    }

    /// <summary>LoRA B ~ N(0, 0.05) (A keeps its Kaiming init); trainable extras get N(0, 0.02) added.</summary>
    internal static void Randomize(nn.Module model, int seed)
    {
        var gen = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.Contains(".lora_B.", StringComparison.Ordinal) || name.Contains(".lora_embedding_B.", StringComparison.Ordinal))
                p.copy_(randn(p.shape, ScalarType.Float32, generator: gen).mul_(0.05));
            else if (p.requires_grad && !name.Contains(".lora_", StringComparison.Ordinal))
                p.add_(randn(p.shape, ScalarType.Float32, generator: gen).mul_(0.02).to(p.dtype, p.device));
        }
    }
}
