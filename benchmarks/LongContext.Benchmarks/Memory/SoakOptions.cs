using System.Globalization;

namespace LongContext.Benchmarks.Memory;

/// <summary>Which base the soak trains LoRA over.</summary>
public enum SoakBase
{
    /// <summary>A float32 base (LoRA).</summary>
    Lora,

    /// <summary>An NF4 base with double quantization (QLoRA).</summary>
    Qlora,
}

/// <summary>
/// Options of the soak mode: <c>soak [--steps N] [--warmup N] [--sample-every N] [--max-growth F] [--base lora|qlora|both]</c>.
/// Validated where they are set.
/// </summary>
public sealed record SoakOptions
{
    private readonly int _steps = 10_000;
    private readonly int _warmup = 500;
    private readonly int _sampleEvery = 50;
    private readonly double _maxGrowth = 0.05;
    private readonly IReadOnlyList<SoakBase> _bases = [SoakBase.Lora, SoakBase.Qlora];

    /// <summary>Training steps per base (default 10,000).</summary>
    public int Steps
    {
        get => _steps;
        init => _steps = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(Steps), value, $"--steps must be positive; got {value}.");
    }

    /// <summary>Steps before the reference RSS sample (default 500): allocator pools and optimizer state settle here.</summary>
    public int Warmup
    {
        get => _warmup;
        init => _warmup = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(Warmup), value, $"--warmup must be non-negative; got {value}.");
    }

    /// <summary>Steps between RSS samples (default 50).</summary>
    public int SampleEvery
    {
        get => _sampleEvery;
        init => _sampleEvery = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(SampleEvery), value, $"--sample-every must be positive; got {value}.");
    }

    /// <summary>Largest allowed growth of RSS over the sample at <see cref="Warmup"/>, as a fraction (default 0.05).</summary>
    public double MaxGrowth
    {
        get => _maxGrowth;
        init => _maxGrowth = value >= 0 && double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(nameof(MaxGrowth), value, $"--max-growth must be a non-negative fraction; got {value}.");
    }

    /// <summary>The bases to soak, in order (default both).</summary>
    public IReadOnlyList<SoakBase> Bases
    {
        get => _bases;
        init => _bases = value is { Count: > 0 } ? value : throw new ArgumentException("--base needs at least one base.", nameof(Bases));
    }

    /// <summary>The usage text.</summary>
    public const string Usage =
        "soak [--steps N] [--warmup N] [--sample-every N] [--max-growth F] [--base lora|qlora|both]\n" +
        "  LoRA training steps of a tiny Llama (CPU) with RSS sampled; fails if RSS grows more than --max-growth (default 0.05)\n" +
        "  over its value after --warmup steps (default 500). Defaults: 10,000 steps per base, both bases.";

    /// <summary>Parses the soak arguments (after the word <c>soak</c>).</summary>
    /// <exception cref="ArgumentException">An unknown option, a missing or invalid value, or steps not above the warm-up.</exception>
    public static SoakOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var o = new SoakOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{a} needs a value.", nameof(args));
            o = a switch
            {
                "--steps" => o with { Steps = Int(Value(), a) },
                "--warmup" => o with { Warmup = Int(Value(), a) },
                "--sample-every" => o with { SampleEvery = Int(Value(), a) },
                "--max-growth" => o with { MaxGrowth = double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out double g) ? g : throw new ArgumentException($"{a} needs a number.", nameof(args)) },
                "--base" => o with
                {
                    Bases = Value() switch
                    {
                        "lora" => [SoakBase.Lora],
                        "qlora" => [SoakBase.Qlora],
                        "both" => [SoakBase.Lora, SoakBase.Qlora],
                        var v => throw new ArgumentException($"--base is '{v}'; expected lora, qlora or both.", nameof(args)),
                    },
                },
                _ => throw new ArgumentException($"unknown soak option '{a}'.", nameof(args)),
            };
        }
        if (o.Steps <= o.Warmup)
            throw new ArgumentException($"--steps ({o.Steps}) must exceed --warmup ({o.Warmup}): the growth is measured after the warm-up.", nameof(args));
        return o;
    }

    private static int Int(string value, string option)
        => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new ArgumentException($"{option} needs an integer; got '{value}'.", nameof(option));
}
