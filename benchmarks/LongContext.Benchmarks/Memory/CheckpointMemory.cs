using System.Diagnostics;
using System.Globalization;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Memory;

/// <summary>
/// Host memory of loading a sharded checkpoint. <c>checkpoint-memory write DIR [--gb G] [--shard-mb M]</c> writes a
/// synthetic float32 Llama checkpoint of about G GB (default 3) in HF's sharded layout (default 1000 MB shards);
/// <c>checkpoint-memory load DIR [--whole-shards]</c> loads it with <see cref="LlamaCheckpoint.Load"/> in a fresh
/// process and reports the peak resident set (VmHWM, reset after start-up) against the model's bytes, the largest
/// tensor and the largest shard. <c>--whole-shards</c> loads the same folder the way the library did before it read
/// tensors one by one (each shard's tensors all in memory, then copied), for comparison. Linux only (VmHWM).
/// </summary>
public static class CheckpointMemory
{
    /// <summary>The usage text.</summary>
    public const string Usage =
        "checkpoint-memory write <folder> [--gb G] [--shard-mb M]   synthetic float32 sharded checkpoint (default 3 GB, 1000 MB shards)\n" +
        "checkpoint-memory load <folder> [--whole-shards]          peak RSS of LlamaCheckpoint.Load (or of whole-shard reading)";

    /// <summary>Runs the command; returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output)
    {
        if (args.Count < 2) throw new ArgumentException("checkpoint-memory needs 'write <folder>' or 'load <folder>'.", nameof(args));
        string folder = args[1];
        var rest = args.Skip(2).ToList();
        return args[0] switch
        {
            "write" => Write(folder, rest, output),
            "load" => Load(folder, rest.Remove("--whole-shards"), rest, output),
            var c => throw new ArgumentException($"unknown checkpoint-memory command '{c}'; expected write or load.", nameof(args)),
        };
    }

    private static int Write(string folder, List<string> rest, TextWriter output)
    {
        double gb = Number(rest, "--gb", 3.0), shardMb = Number(rest, "--shard-mb", 1000.0);
        if (rest.Count > 0) throw new ArgumentException($"unknown checkpoint-memory write option(s): {string.Join(' ', rest)}.");
        if (!(gb > 0) || !(shardMb > 0)) throw new ArgumentException($"--gb and --shard-mb must be positive; got {gb} and {shardMb}.");
        const long h = 2048, inner = 5632, vocab = 32000;
        long perLayer = (4 * h * h + 3 * h * inner + 2 * h) * 4, embed = vocab * h * 4;
        int layers = (int)Math.Max(1, Math.Round((gb * 1e9 - 2 * embed) / perLayer));
        var config = new LlamaConfig
        {
            VocabSize = (int)vocab, HiddenSize = (int)h, IntermediateSize = (int)inner, NumHiddenLayers = layers, NumAttentionHeads = 16,
            NumKeyValueHeads = 16, HeadDim = 128, MaxPositionEmbeddings = 4096, RmsNormEps = 1e-5, Rope = new RopeParameters(),
        };
        var clock = Stopwatch.StartNew();
        torch.manual_seed(1);
        using var model = new LlamaForCausalLM(config);
        LlamaCheckpoint.Save(model, folder, (long)(shardMb * 1e6));
        long bytes = model.parameters().Sum(p => p.numel() * p.ElementSize);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {folder}: {layers} layers (hidden {h}, MLP {inner}, vocab {vocab}), float32, {bytes / 1e9:0.00} GB in {Directory.GetFiles(folder, "model-*.safetensors").Length} shards of at most {shardMb:0} MB, {clock.Elapsed.TotalSeconds:0} s"));
        return 0;
    }

    private static int Load(string folder, bool wholeShards, List<string> rest, TextWriter output)
    {
        if (rest.Count > 0) throw new ArgumentException($"unknown checkpoint-memory load option(s): {string.Join(' ', rest)}.");
        if (!OperatingSystem.IsLinux()) throw new InvalidOperationException("checkpoint-memory load reads VmHWM from /proc and runs on Linux only.");
        using (var warm = ones(16)) warm.sum().Dispose(); // libtorch loaded and initialised before the baseline
        var shards = Directory.GetFiles(folder, "*.safetensors");
        long largestShard = shards.Max(f => new FileInfo(f).Length);
        long largestTensor = 0;
        foreach (string shard in shards)
        {
            using var reader = SafetensorsReader.Open(shard);
            largestTensor = Math.Max(largestTensor, reader.Entries.Values.Max(e => e.ByteCount));
        }
        ResetPeak();
        long baseline = Status("VmRSS");
        var clock = Stopwatch.StartNew();
        using LlamaForCausalLM model = wholeShards ? LoadWholeShards(folder) : LlamaCheckpoint.Load(folder);
        double seconds = clock.Elapsed.TotalSeconds;
        long peak = Status("VmHWM");
        long after = Status("VmRSS");
        long modelBytes = model.parameters().Sum(p => p.numel() * p.ElementSize);
        long extra = peak - baseline - modelBytes;
        string how = wholeShards ? "whole shards (each shard's tensors in memory, then copied)" : "LlamaCheckpoint.Load (each tensor read into its parameter)";
        output.WriteLine($"load {folder} with {how}: {seconds:0.0} s");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  model {MiB(modelBytes):0} MiB in {shards.Length} shards; largest shard {MiB(largestShard):0} MiB, largest tensor {MiB(largestTensor):0} MiB"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  RSS before {MiB(baseline):0} MiB, peak {MiB(peak):0} MiB, after {MiB(after):0} MiB: peak - before = model + {MiB(extra):0} MiB"));
        if (wholeShards) return 0;
        bool ok = extra <= largestTensor + (64L << 20);
        output.WriteLine($"  {(ok ? "ok  " : "FAIL")} the peak is within the model plus one tensor (+64 MiB)");
        return ok ? 0 : 1;
    }

    /// <summary>The earlier loader's way, for comparison: every tensor of a shard loaded, then copied into the model.</summary>
    private static LlamaForCausalLM LoadWholeShards(string folder)
    {
        var config = LlamaConfig.Load(folder);
        var model = new LlamaForCausalLM(config);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var noGrad = no_grad();
        foreach (string shard in Directory.GetFiles(folder, "model-*.safetensors").Order(StringComparer.Ordinal))
        {
            var tensors = SafetensorsFile.Load(shard);
            foreach (var (k, t) in tensors)
            {
                parameters[k].copy_(t);
                t.Dispose();
            }
        }
        return model;
    }

    /// <summary>Resets VmHWM to the current RSS (Linux <c>clear_refs</c> value 5).</summary>
    private static void ResetPeak() => File.WriteAllText("/proc/self/clear_refs", "5");

    /// <summary>A <c>/proc/self/status</c> field in bytes.</summary>
    private static long Status(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
            string kb = line[(field.Length + 1)..].Trim().Split(' ')[0];
            return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException($"/proc/self/status has no {field}.");
    }

    private static double Number(List<string> args, string option, double fallback)
    {
        int i = args.IndexOf(option);
        if (i < 0) return fallback;
        if (i + 1 >= args.Count || !double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
            throw new ArgumentException($"{option} needs a number.");
        args.RemoveRange(i, 2);
        return v;
    }

    private static double MiB(long bytes) => bytes / (1024.0 * 1024.0);
}
