using System.Runtime.InteropServices;
using LongContext.Llama;
using LongContext.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>
/// Peak memory of a training step with and without activation checkpointing, measured on the CPU as the process's
/// peak resident set (Linux <c>VmHWM</c>, reset through <c>/proc/self/clear_refs</c> before each step, with
/// <c>malloc_trim</c> returning freed heap first). Runs alone (no parallel tests) so other tests do not allocate
/// meanwhile.
/// </summary>
[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class CheckpointMemoryTests(ITestOutputHelper output)
{
    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    private static long ReadKb(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        throw new InvalidOperationException($"/proc/self/status has no {field}");
    }

    /// <summary>
    /// RSS growth (MiB) while the autograd graph of one forward is alive (the saved activations), and the peak
    /// RSS growth over forward + backward.
    /// </summary>
    private static (double Held, double Peak) Measure(LlamaForCausalLM model, Tensor ids)
    {
        model.zero_grad();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        MallocTrim(0);
        File.WriteAllText("/proc/self/clear_refs", "5");          // VmHWM := current RSS
        long before = ReadKb("VmRSS");
        double held;
        using (var scope = NewDisposeScope())
        {
            Tensor loss = model.Loss(ids, ids);
            MallocTrim(0);
            held = (ReadKb("VmRSS") - before) / 1024.0;
            loss.backward();
        }
        return (held, (ReadKb("VmHWM") - before) / 1024.0);
    }

    [Fact]
    public void Checkpointing_ShrinksTheActivationsHeldBetweenForwardAndBackward()
    {
        if (!OperatingSystem.IsLinux()) return;   // VmRSS, VmHWM and clear_refs are Linux-only
        random.manual_seed(3);
        var config = new LlamaConfig
        {
            VocabSize = 256, HiddenSize = 256, IntermediateSize = 688, NumHiddenLayers = 8, NumAttentionHeads = 8,
            NumKeyValueHeads = 8, HeadDim = 32, RmsNormEps = 1e-6, MaxPositionEmbeddings = 1024,
        };
        using var model = new LlamaForCausalLM(config);
        model.train();
        Tensor ids = randint(0, 256, [2, 512], dtype: ScalarType.Int64);
        Measure(model, ids);                                          // warm-up: gradients and allocator pools exist

        model.SetGradientCheckpointing(true);
        var checkpointed = Measure(model, ids);
        model.SetGradientCheckpointing(false);
        var plain = Measure(model, ids);

        output.WriteLine($"8 layers, B=2, N=512, hidden 256, float32, CPU. Held after forward: plain {plain.Held:F0} MiB, " +
                         $"checkpointed {checkpointed.Held:F0} MiB. Peak over the step: plain {plain.Peak:F0} MiB, checkpointed {checkpointed.Peak:F0} MiB.");
        // Plain keeps every layer's activations (tens of MiB each); checkpointed keeps each layer's input (1 MiB).
        Assert.True(plain.Held > 80, $"plain forward held only {plain.Held:F0} MiB; the measurement is not seeing activations");
        Assert.True(checkpointed.Held < 0.25 * plain.Held,
            $"checkpointed forward held {checkpointed.Held:F0} MiB; expected under a quarter of the plain {plain.Held:F0} MiB");
    }
}
