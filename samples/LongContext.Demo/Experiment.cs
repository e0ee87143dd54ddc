using System.Diagnostics;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Rope;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Demo;

/// <summary>What the demo measured.</summary>
/// <param name="Lengths">Accuracy and loss of every model at every context length.</param>
/// <param name="Curves">Training curves of every run.</param>
/// <param name="Baseline">The short-context model at the long context (no extension).</param>
/// <param name="WithoutPi">Extension by extrapolation (no PI) at the long context.</param>
/// <param name="WithPi">Extension with PI at the long context.</param>
public sealed record ExperimentResult(IReadOnlyList<LengthResult> Lengths, IReadOnlyList<CurvePoint> Curves, Score Baseline, Score WithoutPi, Score WithPi);

/// <summary>The demo's stages: train at L, evaluate at L..F x L, extend with and without PI, evaluate again.</summary>
public sealed class Experiment(DemoOptions options)
{
    /// <summary>Row name of the model trained at the short context.</summary>
    public const string BaseModel = "trained at L, no extension";
    /// <summary>Row name of PI applied without fine-tuning.</summary>
    public const string PiZeroShot = "PI, no fine-tuning";
    /// <summary>Row name of the extension without PI.</summary>
    public const string Extrapolation = "no PI + S2 + LoRA (extrapolation)";
    /// <summary>Row name of the extension with PI.</summary>
    public const string Interpolation = "PI + S2 + LoRA (LongLoRA)";

    /// <summary>Runs all stages, writing checkpoints under the output folder.</summary>
    /// <returns>The measurements.</returns>
    public ExperimentResult Run()
    {
        Device device = torch.device(options.Device);
        if (device.type == DeviceType.CUDA && !torch.cuda.is_available())
            throw new ArgumentException("--device cuda was given but CUDA is not available (this build references libtorch-cpu).", nameof(options));
        torch.manual_seed(options.Seed);
        var task = new KeyValueRetrievalTask(options.LongContext, options.Values);
        var trainer = new TaskTrainer(task, device, options.Seed);
        int l = options.Context, target = options.LongContext;
        int[] lengths = Enumerable.Range(1, options.Factor).Select(i => i * l).ToArray();
        var curves = new List<CurvePoint>();
        var results = new List<LengthResult>();
        string shortCheckpoint = Path.Combine(options.Output, $"model-L{l}");

        // 1. Train at the short context L (all parameters, full attention).
        using (var model = CreateModel(task, device))
        {
            Console.WriteLine($"Model: {Describe(model)}; task: {task.Keys} keys with {task.Values} values each, vocabulary {task.VocabSize}.");
            curves.AddRange(trainer.Train(model, $"train at L={l}", l, options.PretrainSteps, options.BatchSize, options.LearningRate, 0));
            LlamaCheckpoint.Save(model, shortCheckpoint);
            results.AddRange(EvaluateAll(trainer, model, BaseModel, lengths));
        }

        // 2. PI without fine-tuning (rope factor only).
        using (var model = LlamaCheckpoint.Load(shortCheckpoint, device: device))
        {
            LongLora.ApplyPositionInterpolation(model, target);
            results.AddRange(EvaluateAll(trainer, model, PiZeroShot, lengths));
        }

        // 3. Extend without and with PI: S2-Attn + LoRA + trainable embeddings/norms, same budget, same data.
        foreach (var (name, interpolate) in new[] { (Extrapolation, false), (Interpolation, true) })
        {
            using var model = LlamaCheckpoint.Load(shortCheckpoint, device: device);
            var report = LongLora.Prepare(model, new LongLoraOptions
            {
                TargetContextLength = target,
                PositionInterpolation = interpolate, // false: the rope stays as trained (extrapolation)
                Lora = new LoraOptions { Rank = options.LoraRank, Alpha = 2 * options.LoraRank, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"] },
                GradientCheckpointing = false, // a tiny model: memory is no concern, recomputation would only cost time
            });
            Console.WriteLine($"{name}: {report.ToString().Split('\n')[^1]}");
            curves.AddRange(trainer.Train(model, name, target, options.FinetuneSteps, options.FinetuneBatchSize, options.FinetuneLearningRate, options.PretrainSteps));
            results.AddRange(EvaluateAll(trainer, model, name, lengths));
        }

        Score At(string model) => results.Single(r => r.Model == model && r.ContextLength == target).Score;
        return new ExperimentResult(results, curves, At(BaseModel), At(Extrapolation), At(Interpolation));
    }

    private LlamaForCausalLM CreateModel(KeyValueRetrievalTask task, Device device)
    {
        LlamaForCausalLM model;
        if (options.Model is { } folder)
        {
            model = LlamaCheckpoint.Load(folder, ScalarType.Float32, device);
            foreach (string warning in model.Config.Warnings) Console.WriteLine($"  warning: {warning}");
            if (model.Config.VocabSize < task.VocabSize)
                throw new ArgumentException($"--model '{folder}' has a vocabulary of {model.Config.VocabSize} tokens; the task needs {task.VocabSize}.", nameof(options));
            if (model.Config.Rope.Type != RopeType.Default)
                throw new ArgumentException($"--model '{folder}' already scales its rope ({model.Config.Rope.Type}); the demo extends an unscaled model.", nameof(options));
            model.UpdateRope(model.Config with { MaxPositionEmbeddings = options.Context });
            return model;
        }
        var config = new LlamaConfig
        {
            VocabSize = task.VocabSize,
            HiddenSize = options.Hidden,
            IntermediateSize = 4 * options.Hidden,
            NumHiddenLayers = options.Layers,
            NumAttentionHeads = options.Heads,
            NumKeyValueHeads = options.Heads,
            HeadDim = options.Hidden / options.Heads,
            MaxPositionEmbeddings = options.Context,
            Rope = new RopeParameters { Theta = 10000 },
        };
        model = new LlamaForCausalLM(config);
        model.to(device);
        return model;
    }

    private List<LengthResult> EvaluateAll(TaskTrainer trainer, LlamaForCausalLM model, string name, int[] lengths)
    {
        var watch = Stopwatch.StartNew();
        var rows = lengths.Select(n => new LengthResult(name, n, trainer.Evaluate(model, n, options.EvalSamples))).ToList();
        Console.WriteLine($"  evaluated '{name}': " + string.Join(", ", rows.Select(r => $"{r.ContextLength}: {r.Score.Accuracy:P1}")) + $" ({watch.Elapsed.TotalSeconds:F0}s)");
        return rows;
    }

    private static string Describe(LlamaForCausalLM model)
    {
        var c = model.Config;
        long count = model.parameters().Sum(p => p.numel());
        return $"Llama {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, {count:N0} parameters";
    }
}
