using System.ComponentModel;
using System.Globalization;
using LongContext.Demo.Experiment;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;

namespace LongContext.Demo.Cli;

/// <summary>Options every command takes.</summary>
public class CommonSettings : CommandSettings
{
    /// <summary>cpu or cuda.</summary>
    [CommandOption("--device <DEVICE>")]
    [Description("cpu or cuda (default cpu).")]
    [DefaultValue("cpu")]
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// The description of <c>--seed</c>, declared by each command that draws weights and data (demo, pretrain; extend
    /// and generate declare their own: the seed of the LoRA initialization, of the sampling); eval takes none, so a
    /// seed given to it is refused as an unknown option rather than ignored.
    /// </summary>
    protected const string SeedDescription = "Seed of initialization and data (default 1).";

    /// <summary>The error of a negative <c>--seed</c>, or null.</summary>
    /// <param name="seed">The value given.</param>
    protected static ValidationResult? SeedError(int seed) =>
        seed < 0 ? ValidationResult.Error(string.Create(CultureInfo.InvariantCulture, $"--seed must be non-negative; got {seed}.")) : null;

    /// <summary>CPU threads for torch; 0 keeps torch's default.</summary>
    [CommandOption("--threads <N>")]
    [Description("CPU threads for torch, at most the machine's CPUs (default: torch's choice).")]
    [DefaultValue(0)]
    public int Threads { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        if (Device is not ("cpu" or "cuda")) return ValidationResult.Error($"--device must be cpu or cuda; got '{Device}'.");
        if (Device == "cuda" && CudaUnavailable() is { } why) return ValidationResult.Error($"--device must be cpu on this machine: {why}; got 'cuda'.");
        if (Threads < 0 || Threads > Environment.ProcessorCount)   // more threads than CPUs only slows torch down (100000 hung the process)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--threads must be in [0, {Environment.ProcessorCount}] (0: torch's choice; at most this machine's {Environment.ProcessorCount} CPUs); got {Threads}."));
        return ValidationResult.Success();
    }

    /// <summary>
    /// Builds settings whose record checks its own values (<see cref="PretrainSettings"/>, <see cref="ExperimentSettings"/>) and answers a value out of
    /// range as the option's error, so the check is written once, in the record.
    /// </summary>
    /// <param name="build">Builds the record from the options.</param>
    /// <param name="options">The option of each record property that an option sets.</param>
    protected static ValidationResult Checked(Action build, IReadOnlyDictionary<string, string> options)
    {
        ArgumentNullException.ThrowIfNull(build);
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            build();
            return ValidationResult.Success();
        }
        catch (SettingOutOfRangeException e)
        {
            string option = e.ParamName is { } p && options.TryGetValue(p, out var o) ? o : e.ParamName ?? "a setting";
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture, $"{option} must be {e.Expected}; got {e.ActualValue}."));
        }
    }

    /// <summary>The torch device (<see cref="Validate"/> checked that CUDA is there when asked for); sets the thread count.</summary>
    public torch.Device TorchDevice()
    {
        if (Threads > 0) torch.set_num_threads(Threads);
        return torch.device(Device);
    }

    /// <summary>Why CUDA cannot be used in this process (its backend did not load, or it sees no device), or null when it can.</summary>
    public static string? CudaUnavailable()
    {
        const string how = "a build that references libtorch-cpu runs on the CPU only: reference a CUDA libtorch package, or publish with " +
                           "-p:LibTorchPackage=false and put a CUDA PyTorch's torch/lib on LD_LIBRARY_PATH (scripts/gpu-check.sh does)";
        try
        {
            torch.InitializeDeviceType(DeviceType.CUDA);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException)
        {
            // TorchSharp appends the native loader's trace ("... machine. Trace from LoadNativeBackend: ..."); the first sentence says it.
            string said = e.Message.Split('\n')[0];
            int trace = said.IndexOf(" Trace from", StringComparison.Ordinal);
            return $"the CUDA backend did not load ({(trace > 0 ? said[..trace] : said).Trim()}); {how}";
        }
        return torch.cuda.is_available() ? null : $"CUDA is not available; {how}";
    }
}
