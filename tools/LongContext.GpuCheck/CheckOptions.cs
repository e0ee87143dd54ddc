using static TorchSharp.torch;

namespace LongContext.GpuCheck;

/// <summary>The command line of the check program, validated as it is parsed.</summary>
internal sealed record CheckOptions
{
    /// <summary>Parity groups in the order they run.</summary>
    public static readonly IReadOnlyList<string> ParityGroups = ["rope", "attention", "lora", "quant", "checkpoint", "model", "generation"];

    /// <summary><c>parity</c>, <c>interop-export</c> or <c>interop-import</c>.</summary>
    public string Command { get; init; } = "";

    /// <summary><c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Compute dtypes of the parity checks.</summary>
    public IReadOnlyList<ScalarType> Dtypes { get; init; } = [ScalarType.Float32, ScalarType.BFloat16];

    /// <summary>Fixture root (the test project's Fixtures layout); null: located automatically.</summary>
    public string? Fixtures { get; init; }

    /// <summary>Smaller shapes and fewer fixture cases (CI smoke, CPU dry run).</summary>
    public bool Quick { get; init; }

    /// <summary>Parity groups to run (all by default).</summary>
    public IReadOnlyList<string> Only { get; init; } = ParityGroups;

    /// <summary>JSON-lines results file to append to; null: console only.</summary>
    public string? Results { get; init; }

    /// <summary>Folder the interop commands write (export) or read (import).</summary>
    public string? Folder { get; init; }

    /// <summary>The usage text.</summary>
    public const string Usage =
        "usage: LongContext.GpuCheck <command> [options]\n" +
        "  parity          every CUDA path against CPU float64 references (rope, attention, lora, quant, checkpoint, model, generation)\n" +
        "  interop-export  --out DIR: LongLora.SaveAdapter / SaveMerged folders and logits for scripts/gpu/interop.py\n" +
        "  interop-import  --in DIR: load the peft adapters interop.py wrote and compare logits\n" +
        "options:\n" +
        "  --device cpu|cuda          (default: $LONGCONTEXT_DEVICE, else cpu)\n" +
        "  --dtypes float32,bfloat16  parity dtypes (default both)\n" +
        "  --only GROUP[,GROUP]       parity groups to run\n" +
        "  --quick                    small shapes and a subset of fixture cases\n" +
        "  --fixtures DIR             fixture root (default: $LONGCONTEXT_FIXTURES, else ./fixtures beside the program or the test project's)\n" +
        "  --results FILE             append one JSON object per check to FILE\n" +
        "exit code: 0 all passed or skipped, 1 a check failed or threw, 2 bad command line";

    /// <summary>Parses the arguments.</summary>
    /// <exception cref="ArgumentException">An unknown command or option, or a bad value (named).</exception>
    public static CheckOptions Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        if (args.Count == 0) throw new ArgumentException("no command given.", nameof(args));
        string command = args[0];
        if (command is not ("parity" or "interop-export" or "interop-import"))
            throw new ArgumentException($"unknown command '{command}'; expected parity, interop-export or interop-import.", nameof(args));
        var o = new CheckOptions { Command = command, Device = environment("LONGCONTEXT_DEVICE") ?? "cpu", Fixtures = environment("LONGCONTEXT_FIXTURES") };
        for (int i = 1; i < args.Count; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{a} needs a value.", nameof(args));
            o = a switch
            {
                "--device" => o with { Device = Value() },
                "--dtypes" => o with { Dtypes = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseDtype).ToArray() },
                "--only" => o with { Only = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseGroup).ToArray() },
                "--quick" => o with { Quick = true },
                "--fixtures" => o with { Fixtures = Value() },
                "--results" => o with { Results = Value() },
                "--out" when command == "interop-export" => o with { Folder = Value() },
                "--in" when command == "interop-import" => o with { Folder = Value() },
                _ => throw new ArgumentException($"unknown option '{a}' for {command}.", nameof(args)),
            };
        }
        string device = o.Device.Trim().ToLowerInvariant();
        if (device is not ("cpu" or "cuda")) throw new ArgumentException($"--device is '{o.Device}'; expected cpu or cuda.", nameof(args));
        if (o.Dtypes.Count == 0) throw new ArgumentException("--dtypes names no dtype.", nameof(args));
        if (command != "parity" && o.Folder is null)
            throw new ArgumentException($"{command} needs {(command == "interop-export" ? "--out" : "--in")} DIR.", nameof(args));
        return o with { Device = device };
    }

    private static ScalarType ParseDtype(string name) => name.ToLowerInvariant() switch
    {
        "float32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"--dtypes entry '{name}' is not float32 or bfloat16.", nameof(name)),
    };

    private static string ParseGroup(string name)
        => ParityGroups.Contains(name) ? name : throw new ArgumentException($"--only entry '{name}' is not one of {string.Join(", ", ParityGroups)}.", nameof(name));
}
