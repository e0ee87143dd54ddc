using System.Globalization;

namespace LongContext.Demo;

/// <summary>Command-line options of the demo, validated where they are parsed.</summary>
public sealed record DemoOptions
{
    /// <summary>Reduced-size run for CI: fewer steps and samples, same assertions.</summary>
    public bool Quick { get; init; }
    /// <summary>Seed of the model initialization and of all data.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Short (training) context length L; the model is extended to <see cref="Factor"/> x L.</summary>
    public int Context { get; init; } = 64;
    /// <summary>Context extension factor (the PI paper's and LongLoRA's linear rope factor).</summary>
    public int Factor { get; init; } = 4;
    /// <summary>Distinct values of the retrieval task (chance accuracy is 1 / Values).</summary>
    public int Values { get; init; } = 8;
    /// <summary>Training steps at the short context.</summary>
    public int PretrainSteps { get; init; } = 1500;
    /// <summary>Fine-tuning steps at the long context, for each extension method.</summary>
    public int FinetuneSteps { get; init; } = 300;
    /// <summary>Batch size at the short context.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Batch size at the long context.</summary>
    public int FinetuneBatchSize { get; init; } = 8;
    /// <summary>Peak learning rate at the short context.</summary>
    public double LearningRate { get; init; } = 3e-3;
    /// <summary>Peak learning rate of the extension fine-tuning.</summary>
    public double FinetuneLearningRate { get; init; } = 2e-3;
    /// <summary>Hidden size of the tiny model.</summary>
    public int Hidden { get; init; } = 64;
    /// <summary>Decoder layers of the tiny model.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Attention heads of the tiny model.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>LoRA rank of the extension.</summary>
    public int LoraRank { get; init; } = 8;
    /// <summary>Evaluation sequences per context length.</summary>
    public int EvalSamples { get; init; } = 128;
    /// <summary>"cpu" or "cuda".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Folder for CSV files, the plot and the checkpoints.</summary>
    public string Output { get; init; } = "demo-output";
    /// <summary>HF Llama checkpoint folder used in place of the tiny model (trained on the task at the short context).</summary>
    public string? Model { get; init; }

    /// <summary>The long (target) context length.</summary>
    public int LongContext => Context * Factor;

    /// <summary>The usage text.</summary>
    public static string Usage => """
        Context extension demo: train a tiny Llama on key-value retrieval at context L, show it fails at 4L, then extend
        it with Position Interpolation + S2-Attn + LoRA (+ trainable embeddings and norms), and without PI, and compare.

        Usage: dotnet run -c Release --project samples/LongContext.Demo -- [options]
          --quick                  reduced run for CI (fails with exit code 1 unless PI beats the baseline)
          --seed N                 seed of weights and data (default 1)
          --context L              short context length (default 64); the target is factor x L
          --factor F               extension factor (default 4)
          --pretrain-steps N       steps at L (default 1500)
          --finetune-steps N       steps at F x L for each extension (default 300)
          --batch-size N           batch at L (default 32)
          --finetune-batch-size N  batch at F x L (default 8)
          --lr X                   peak learning rate at L (default 3e-3)
          --finetune-lr X          peak learning rate of the extension (default 2e-3)
          --hidden N --layers N --heads N   tiny model size (default 64, 2, 4)
          --lora-rank N            LoRA rank (default 8)
          --values N               values per key (default 8; chance accuracy 1/N)
          --eval-samples N         evaluation sequences per length (default 128)
          --device cpu|cuda        (default cpu)
          --output DIR             results folder (default demo-output)
          --model DIR              HF Llama checkpoint folder to use instead of the tiny model
          --help
        """;

    /// <summary>Parses command-line arguments.</summary>
    /// <param name="args">The arguments.</param>
    /// <returns>The options, or null when help was asked for.</returns>
    /// <exception cref="ArgumentException">An unknown option or a bad value (the message names both).</exception>
    public static DemoOptions? Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var o = new DemoOptions();
        bool quick = args.Contains("--quick");
        if (quick)
        {
            o = o with { Quick = true, PretrainSteps = 1000, FinetuneSteps = 150, EvalSamples = 64 };
        }
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            string Value()
            {
                if (i + 1 >= args.Count) throw new ArgumentException($"option {name} needs a value.", nameof(args));
                return args[++i];
            }
            int Int(int min) => ParseInt(name, Value(), min);
            double Real() => ParseReal(name, Value());
            o = name switch
            {
                "--help" or "-h" => null,
                "--quick" => o,
                "--seed" => o with { Seed = Int(0) },
                "--context" => o with { Context = Int(16) },
                "--factor" => o with { Factor = Int(2) },
                "--values" => o with { Values = Int(2) },
                "--pretrain-steps" => o with { PretrainSteps = Int(0) },
                "--finetune-steps" => o with { FinetuneSteps = Int(1) },
                "--batch-size" => o with { BatchSize = Int(1) },
                "--finetune-batch-size" => o with { FinetuneBatchSize = Int(1) },
                "--lr" => o with { LearningRate = Real() },
                "--finetune-lr" => o with { FinetuneLearningRate = Real() },
                "--hidden" => o with { Hidden = Int(8) },
                "--layers" => o with { Layers = Int(1) },
                "--heads" => o with { Heads = Int(1) },
                "--lora-rank" => o with { LoraRank = Int(1) },
                "--eval-samples" => o with { EvalSamples = Int(1) },
                "--device" => o with { Device = ParseDevice(Value()) },
                "--output" => o with { Output = Value() },
                "--model" => o with { Model = ExistingFolder(name, Value()) },
                _ => throw new ArgumentException($"unknown option '{name}'; run with --help for the list.", nameof(args)),
            };
            if (o is null) return null;
        }
        if (o.Hidden % o.Heads != 0 || (o.Hidden / o.Heads) % 2 != 0)
            throw new ArgumentException($"--hidden {o.Hidden} must be a multiple of 2 x --heads {o.Heads} (rotary needs an even head size).", nameof(args));
        if (o.LongContext % 4 != 0)
            throw new ArgumentException($"--context {o.Context} x --factor {o.Factor} = {o.LongContext} must be a multiple of 4 (S2-Attn splits it into 4 groups).", nameof(args));
        return o;
    }

    private static int ParseInt(string name, string text, int min)
    {
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min)
            throw new ArgumentException($"option {name} needs an integer >= {min}; got '{text}'.", nameof(name));
        return v;
    }

    private static double ParseReal(string name, string text)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0) || double.IsInfinity(v))
            throw new ArgumentException($"option {name} needs a positive number; got '{text}'.", nameof(name));
        return v;
    }

    private static string ParseDevice(string text) => text is "cpu" or "cuda"
        ? text
        : throw new ArgumentException($"option --device must be 'cpu' or 'cuda'; got '{text}'.", nameof(text));

    private static string ExistingFolder(string name, string path) => Directory.Exists(path)
        ? path
        : throw new ArgumentException($"option {name}: folder '{path}' does not exist.", nameof(path));
}
