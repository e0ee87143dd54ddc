using System.Text.Json.Nodes;
using LongContext.GpuCheck.Results;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Lora;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Parity;

/// <summary>
/// The fixture models on the device: every <c>models/</c> checkpoint folder's logits against HF's float32 logits, and
/// every peft adapter folder's logits with the adapter and after merging (in place, and through a merged checkpoint
/// folder). float32: abs 1e-4 (the fixture README's tolerance). bfloat16 (the checkpoint cast to bf16): 0.1 x
/// max |logits|, about 3x the error measured on the CPU (0.034 x max; a wrong rope or mask moves logits by O(1)).
/// </summary>
internal static class ModelParity
{
    private const double Float32Tolerance = 1e-4, BFloat16Relative = 0.1;

    public static void Run(ParityContext c)
    {
        string root = c.Folder("models");
        if (!Directory.Exists(root))
        {
            c.Runner.Run("model", "fixtures", "-", r => r.Skip("", $"{root} not found"));
            return;
        }
        foreach (string dir in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir);
            if (!File.Exists(Path.Combine(dir, "expected.safetensors"))) continue;
            bool adapter = File.Exists(Path.Combine(dir, "adapter_config.json"));
            foreach (ScalarType dtype in c.Dtypes)
                c.Runner.Run("model", adapter ? $"{name} (peft adapter) logits" : $"{name} logits", Errors.Name(dtype),
                    r => Compare(c, r, dir, adapter, dtype));
        }
    }

    private static double Tolerance(ScalarType dtype, Tensor reference)
        => dtype == ScalarType.Float32 ? Float32Tolerance : BFloat16Relative * Errors.MaxAbs(reference);

    private static void Compare(ParityContext c, Recorder r, string dir, bool adapter, ScalarType dtype)
    {
        var expected = SafetensorsFile.Load(Path.Combine(dir, "expected.safetensors"));
        Tensor ids = expected["input_ids"].to(c.Device);
        string baseFolder = adapter ? BaseFolder(dir) : dir;
        using var model = LlamaCheckpoint.Load(baseFolder, dtype, c.Device);
        if (adapter) PeftAdapter.Load(model, dir);
        model.eval();
        using (no_grad())
        {
            if (!adapter || expected.ContainsKey("logits"))
                r.Close(adapter ? "adapter on" : "", model.forward(ids), expected["logits"], Tolerance(dtype, expected["logits"]));
            if (!adapter || !expected.TryGetValue("logits_merged", out Tensor? merged)) return;
            string folder = Path.Combine(Path.GetTempPath(), $"lc-gpucheck-merged-{Guid.NewGuid():N}");
            try
            {
                LongLora.SaveMerged(model, folder);
                using var plain = LlamaCheckpoint.Load(folder, dtype, c.Device);
                r.Close("merged checkpoint", plain.forward(ids), merged, Tolerance(dtype, merged));
            }
            finally
            {
                if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            }
            LoraInjector.Merge(model);
            r.Close("merged in place", model.forward(ids), merged, Tolerance(dtype, merged));
        }
    }

    private static string BaseFolder(string adapterFolder)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterFolder, "adapter_config.json")))!.AsObject();
        string name = (string?)json["base_model_name_or_path"] ?? throw new InvalidDataException($"{adapterFolder}/adapter_config.json lacks base_model_name_or_path.");
        return Path.Combine(Path.GetDirectoryName(adapterFolder)!, name);
    }
}
