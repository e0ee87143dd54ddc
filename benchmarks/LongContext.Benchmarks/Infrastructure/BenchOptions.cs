using static TorchSharp.torch;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>Command line of the benchmark program: <c>&lt;suite&gt; [--device cpu|cuda] [--dtype ...] [--smoke] [BenchmarkDotNet options]</c>.</summary>
public sealed record BenchOptions
{
    /// <summary>Suite names in the order <c>all</c> runs them.</summary>
    public IReadOnlyList<string> Suites { get; init; } = [];

    /// <summary><c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Compute dtype; null picks the device default.</summary>
    public ScalarType? DType { get; init; }

    /// <summary>Short mode.</summary>
    public bool Smoke { get; init; }

    /// <summary>Everything else, handed to BenchmarkDotNet (e.g. <c>--filter *S2*</c>, <c>--exporters json</c>).</summary>
    public IReadOnlyList<string> BenchmarkDotNetArgs { get; init; } = [];

    /// <summary>The usage text.</summary>
    public static string Usage =>
        "usage: dotnet run -c Release --project benchmarks/LongContext.Benchmarks -- <suite>[,<suite>...]|all [options]\n" +
        $"  suites: {string.Join(", ", Suite.All.Select(s => s.Name))}\n" +
        "  --device cpu|cuda        device (default: $LONGCONTEXT_DEVICE, else cpu)\n" +
        "  --dtype float32|bfloat16|float16   compute dtype (default: $LONGCONTEXT_DTYPE, else float32 on cpu, bfloat16 on cuda)\n" +
        "  --smoke                  short mode: every benchmark once on tiny sizes, exits non-zero on any error\n" +
        "  anything else goes to BenchmarkDotNet (full mode), e.g. --filter '*S2*' --exporters json\n" +
        "memory checks (no BenchmarkDotNet): -- soak [...] | -- checkpoint-memory write|load <folder> [...] (see BENCHMARKS.md)";

    /// <summary>Parses the command line, with <c>LONGCONTEXT_DEVICE</c> / <c>LONGCONTEXT_DTYPE</c> as defaults.</summary>
    /// <exception cref="ArgumentException">An unknown suite, device or dtype, or a missing value.</exception>
    public static BenchOptions Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? device = environment("LONGCONTEXT_DEVICE");
        string? dtype = environment("LONGCONTEXT_DTYPE");
        bool smoke = false;
        var suites = new List<string>();
        var rest = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            switch (a)
            {
                case "--device":
                    device = Value(args, ref i, a);
                    break;
                case "--dtype":
                    dtype = Value(args, ref i, a);
                    break;
                case "--smoke":
                    smoke = true;
                    break;
                default:
                    if (suites.Count == 0 && rest.Count == 0 && !a.StartsWith('-'))
                    {
                        foreach (string name in a.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                        {
                            if (name == "all") suites.AddRange(Suite.All.Select(s => s.Name));
                            else if (Suite.All.Any(s => s.Name == name)) suites.Add(name);
                            else throw new ArgumentException($"Unknown suite '{name}'; expected one of: all, {string.Join(", ", Suite.All.Select(s => s.Name))}.", nameof(args));
                        }
                    }
                    else
                    {
                        rest.Add(a);
                    }
                    break;
            }
        }
        if (suites.Count == 0)
        {
            throw new ArgumentException("No suite given; expected one of: all, " + string.Join(", ", Suite.All.Select(s => s.Name)) + ".", nameof(args));
        }
        device = (device ?? "cpu").Trim().ToLowerInvariant();
        if (device is not ("cpu" or "cuda"))
        {
            throw new ArgumentException($"--device / LONGCONTEXT_DEVICE is '{device}'; expected 'cpu' or 'cuda'.", nameof(args));
        }
        ScalarType? parsedDType = dtype?.Trim().ToLowerInvariant() switch
        {
            null or "" => null,
            "float32" or "fp32" => ScalarType.Float32,
            "bfloat16" or "bf16" => ScalarType.BFloat16,
            "float16" or "fp16" => ScalarType.Float16,
            _ => throw new ArgumentException($"--dtype / LONGCONTEXT_DTYPE is '{dtype}'; expected float32, bfloat16 or float16.", nameof(args)),
        };
        if (smoke && rest.Count > 0)
        {
            throw new ArgumentException($"--smoke takes no BenchmarkDotNet options; got '{string.Join(' ', rest)}'.", nameof(args));
        }
        return new BenchOptions
        {
            Suites = suites.Distinct().ToArray(),
            Device = device,
            DType = parsedDType,
            Smoke = smoke,
            BenchmarkDotNetArgs = rest,
        };
    }

    private static string Value(IReadOnlyList<string> args, ref int i, string option)
    {
        if (i + 1 >= args.Count) throw new ArgumentException($"{option} needs a value.", nameof(args));
        return args[++i];
    }
}
