using LongContext.GpuCheck.Results;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Training;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Interop;

/// <summary>
/// The .NET half of "peft writes, .NET reads": every adapter scripts/gpu/interop.py export-peft wrote is loaded onto the
/// fixture's tiny Llama (NF4-quantized for nf4 cases, through <see cref="QLora.LoadAdapter"/>) and its logits are compared
/// with peft's, adapter on and merged (through <see cref="LongLora.SaveMerged"/> and a reload), abs 1e-4 float32.
/// Pointed at an <c>interop-export</c> folder instead, it is a .NET round trip of the same path (the CPU dry run does
/// that, where peft is not installed); rows are named after the manifest's writer.
/// </summary>
internal static class InteropImport
{
    private const double Tolerance = 1e-4;

    public static void Run(CheckRunner runner, string fixtures, string folder)
    {
        InteropManifest manifest;
        try
        {
            manifest = InteropManifest.Read(folder);
        }
        catch (InvalidDataException e)
        {
            runner.Run("interop", "peft export", "-", r => r.Skip("", e.Message));
            return;
        }
        if (manifest.Variants.Count == 0)
            runner.Run("interop", "peft export", "-", r => r.Skip("", "the manifest lists no case (transformers/peft not available where it was written?)"));
        var ids = SafetensorsFile.Load(Path.Combine(folder, manifest.Inputs))["input_ids"];
        foreach (InteropVariant v in manifest.Variants)
            runner.Run("interop", $"{manifest.Writer} -> dotnet {v.Name}", "float32", r => Compare(runner.Device, r, fixtures, folder, v, ids));
    }

    private static void Compare(Device device, Recorder r, string fixtures, string folder, InteropVariant v, Tensor ids)
    {
        var expected = SafetensorsFile.Load(Path.Combine(folder, v.Expected));
        using var model = TinyBase.Load(fixtures, v.BaseKind, device);
        string adapter = Path.Combine(folder, v.Adapter);
        if (v.BaseKind == "nf4") QLora.LoadAdapter(model, adapter);
        else PeftAdapter.Load(model, adapter);
        model.eval();
        using var noGrad = no_grad();
        Tensor input = ids.to(device);
        r.Close("adapter on", model.forward(input), expected["logits"], Tolerance, v.Description);
        if (!expected.TryGetValue("logits_merged", out Tensor? merged)) return;
        string tmp = Path.Combine(Path.GetTempPath(), $"lc-gpucheck-import-{Guid.NewGuid():N}");
        try
        {
            LongLora.SaveMerged(model, tmp);
            using var plain = LlamaCheckpoint.Load(tmp, ScalarType.Float32, device);
            r.Close("merged checkpoint", plain.forward(input), merged, Tolerance);
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
    }
}
