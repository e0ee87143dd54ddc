using System.Diagnostics;
using System.Globalization;
using LongContext.Benchmarks.Suites;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Rope;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Memory;

/// <summary>
/// The soak mode: many LoRA (or QLoRA) training steps of a tiny Llama on the CPU (forward, LM loss, backward, AdamW
/// step) with the process's resident set sampled. A leak of native memory or of tensor handles shows as RSS that keeps
/// growing after the allocator pools and the optimizer state have settled. The run fails when RSS grows more than
/// <see cref="SoakOptions.MaxGrowth"/> over its value after <see cref="SoakOptions.Warmup"/> steps, or when the
/// number of live tensors grows after the warm-up.
/// </summary>
public static class SoakRunner
{
    private const int Batch = 2;
    private const int Tokens = 64;

    /// <summary>The tiny model: hidden 64, 4 heads of 16, MLP 128, vocab 128, 2 layers, linear PI factor 2.</summary>
    private static LlamaConfig Config => new LlamaConfig
    {
        VocabSize = 128, HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 4, HeadDim = 16, MaxPositionEmbeddings = 128, RmsNormEps = 1e-5, Rope = RopeParameters.Linear(2),
    };

    /// <summary>Runs every base in the options; returns the number of failed bases.</summary>
    public static int Run(SoakOptions options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        int failures = 0;
        foreach (SoakBase b in options.Bases)
        {
            if (!RunOne(b, options, output)) failures++;
        }
        return failures;
    }

    private static bool RunOne(SoakBase soakBase, SoakOptions options, TextWriter output)
    {
        torch.set_num_threads(1); // a tiny model gains nothing from threads, and spinning OpenMP workers slow a shared machine
        torch.manual_seed(20240917);
        var generator = new Generator(20240917);
        using var model = new LlamaForCausalLM(Config);
        if (soakBase == SoakBase.Qlora)
        {
            ModelQuantizer.Quantize(model, new QuantizationOptions { ComputeDtype = ScalarType.Float32 });
            QLora.Inject(model, LlamaShapes.Lora);
        }
        else
        {
            LoraInjector.Inject(model, LlamaShapes.Lora);
        }
        LlamaShapes.FreezeAllButLora(model);
        model.train();
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = optim.AdamW(parameters, lr: 1e-3);

        long reference = 0, referenceLive = 0, peak = 0, last = 0;
        var series = new List<(int Step, long Rss)>();
        var clock = Stopwatch.StartNew();
        double firstLoss = double.NaN, lastLoss = double.NaN;
        for (int step = 1; step <= options.Steps; step++)
        {
            using (var scope = NewDisposeScope())
            {
                Tensor ids = randint(0, Config.VocabSize, [Batch, Tokens], ScalarType.Int64, generator: generator);
                Tensor loss = model.Loss(ids, ids);
                loss.backward();
                optimizer.step();
                optimizer.zero_grad();
                if (step == 1) firstLoss = loss.item<float>();
                if (step == options.Steps) lastLoss = loss.item<float>();
            }
            if (step % options.SampleEvery != 0 && step != options.Warmup && step != options.Steps) continue;
            long rss = SettledWorkingSet();
            series.Add((step, rss));
            if (step == options.Warmup)
            {
                reference = rss;
                referenceLive = LiveTensors();
            }
            if (step > options.Warmup) peak = Math.Max(peak, rss);
            last = rss;
        }
        if (options.Warmup == 0)
        {
            reference = series[0].Rss;
            referenceLive = LiveTensors();
        }
        double seconds = clock.Elapsed.TotalSeconds;
        long endLive = LiveTensors();
        double growth = (double)(peak - reference) / reference;
        bool ok = growth <= options.MaxGrowth && endLive <= referenceLive;
        string label = soakBase == SoakBase.Qlora ? "QLoRA (NF4 base, double quant)" : "LoRA (float32 base)";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(ok ? "ok  " : "FAIL")} soak {label}: {options.Steps} steps in {seconds:0.0} s ({seconds * 1000 / options.Steps:0.00} ms/step), loss {firstLoss:0.000} -> {lastLoss:0.000}"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"     RSS after step {options.Warmup}: {MiB(reference):0.0} MiB; highest after it: {MiB(peak):0.0} MiB ({growth * 100:+0.00;-0.00} %, limit {options.MaxGrowth * 100:0.#} %); at the end: {MiB(last):0.0} MiB"));
        output.WriteLine($"     live tensors after step {options.Warmup}: {referenceLive}; at the end: {endLive}");
        int stride = Math.Max(1, series.Count / 10);
        output.WriteLine("     RSS MiB by step: " + string.Join(", ", series.Where((_, i) => i % stride == 0 || i == series.Count - 1)
            .Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Step}: {MiB(s.Rss):0.0}"))));
        return ok;
    }

    /// <summary>
    /// The resident set after a full blocking collection with finalizers run. Some native objects of a training step
    /// (about 45 KB a step for this model, measured with glibc's mallinfo2) are freed by finalizers, not by the dispose
    /// scope; until the first collection they sit between the freed activation buffers and keep glibc from reusing
    /// that space, so RSS climbs while malloc's bytes in use stay flat. When that first collection comes depends on the
    /// machine (the gen0 budget follows the L3 cache: step 580 on a 260 MiB-L3 Xeon), so RSS sampled without one
    /// measures the host's GC timing rather than a leak. Collected first, the samples no longer depend on when the runtime
    /// would have collected.
    /// </summary>
    private static long SettledWorkingSet()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return Environment.WorkingSet;
    }

    private static double MiB(long bytes) => bytes / (1024.0 * 1024.0);

    private static long LiveTensors() => DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
}
