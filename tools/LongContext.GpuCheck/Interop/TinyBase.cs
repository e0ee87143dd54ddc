using LongContext.IO;
using LongContext.Llama;
using LongContext.Quantization;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Interop;

/// <summary>The interop base model: the fixture's tiny HF Llama (float32), optionally NF4-quantized as QLoRA does.</summary>
internal static class TinyBase
{
    /// <summary>The fixture checkpoint folder.</summary>
    public static string Folder(string fixtures)
    {
        string folder = Path.Combine(fixtures, "models", "tiny_llama");
        return Directory.Exists(folder) ? folder : throw new DirectoryNotFoundException($"interop needs the fixture model '{folder}'.");
    }

    /// <summary>The 4-bit settings of every nf4 case (bitsandbytes' QLoRA defaults, float32 compute for 1e-4 comparisons).</summary>
    public static QuantizationOptions Nf4 => new() { Type = QuantType.Nf4, BlockSize = 64, DoubleQuant = true, ComputeDtype = ScalarType.Float32 };

    /// <summary>Loads the base (float32) on a device, quantized when <paramref name="baseKind"/> is <c>nf4</c>.</summary>
    /// <exception cref="InvalidDataException">An unknown base kind.</exception>
    public static LlamaForCausalLM Load(string fixtures, string baseKind, Device device)
    {
        var model = LlamaCheckpoint.Load(Folder(fixtures), ScalarType.Float32, device);
        switch (baseKind)
        {
            case "dense": break;
            case "nf4": ModelQuantizer.Quantize(model, Nf4); break;
            default:
                model.Dispose();
                throw new InvalidDataException($"base_kind '{baseKind}' is not dense or nf4.");
        }
        return model;
    }

    /// <summary>Copies a checkpoint folder's config and weights.</summary>
    public static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in new[] { "config.json", LlamaCheckpoint.WeightsFile, "generation_config.json" })
            {
                string source = Path.Combine(from, file);
                if (File.Exists(source)) AtomicFile.WriteThroughPath(Path.Combine(to, file), temp => File.Copy(source, temp));
            }
    }
}
