using System.ComponentModel;
using LongContext.Demo.Experiment;
using Spectre.Console;
using Spectre.Console.Cli;

namespace LongContext.Demo.Cli;

/// <summary>Options of <c>pretrain</c>.</summary>
public sealed class PretrainSettingsCli : CommonSettings
{
    /// <summary>Destination folder of the base.</summary>
    [CommandOption("--output <DIR>")]
    [Description("Folder to write the base to (config.json, model.safetensors in bf16, manifest.json). Default: base-model.")]
    [DefaultValue("base-model")]
    public string Output { get; init; } = "base-model";

    /// <summary>Updates.</summary>
    [CommandOption("--steps <N>")]
    [Description("Optimizer updates (default 2000, the shipped base's).")]
    [DefaultValue(2000)]
    public int Steps { get; init; } = 2000;

    /// <summary>Rows per update.</summary>
    [CommandOption("--batch <N>")]
    [Description("Rows of L tokens per update (default 16).")]
    [DefaultValue(16)]
    public int Batch { get; init; } = 16;

    /// <summary>L.</summary>
    [CommandOption("--context <L>")]
    [Description("Pretraining context L (default 128).")]
    [DefaultValue(128)]
    public int Context { get; init; } = 128;

    /// <summary>RoPE base.</summary>
    [CommandOption("--rope-theta <X>")]
    [Description("RoPE base of the new model (default 500, the shipped base's; Llama-2 uses 10000).")]
    [DefaultValue(500.0)]
    public double RopeTheta { get; init; } = 500;

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        if (!common.Successful) return common;
        if (Steps < 1) return ValidationResult.Error($"--steps must be at least 1; got {Steps}.");
        if (Batch < 1) return ValidationResult.Error($"--batch must be at least 1; got {Batch}.");
        if (!double.IsFinite(RopeTheta) || RopeTheta <= 1) return ValidationResult.Error($"--rope-theta must be a finite number above 1; got {RopeTheta}.");
        if (Context is < 64 or > 4096) return ValidationResult.Error($"--context must be in [64, 4096]; got {Context}.");
        return ValidationResult.Success();
    }
}

/// <summary>Pretrains the demo's base from the seed and saves it with its manifest.</summary>
public sealed class PretrainCommand : Command<PretrainSettingsCli>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, PretrainSettingsCli settings, CancellationToken cancellationToken)
    {
        var device = settings.TorchDevice();
        using var inputs = DemoInputs.Load(DemoInputs.DataFolder);
        var pretrain = new PretrainSettings { Seed = settings.Seed, Steps = settings.Steps, Batch = settings.Batch, Context = settings.Context, RopeTheta = settings.RopeTheta };
        using var model = Pretraining.Run(inputs, pretrain, settings.Output, device);
        using var tokens = inputs.EvaluationTokens(32768);
        var report = Runs.Evaluate(model, "held-out perplexity", tokens, inputs.Tokenizer, [settings.Context], passkeyTrials: 10);
        AnsiConsole.MarkupLine($"Base written to [bold]{Markup.Escape(Path.GetFullPath(settings.Output))}[/]: held-out ppl@{settings.Context} {report.Perplexity[0].Perplexity:F2}, passkey@{settings.Context} {report.Passkey[0].Correct}/{report.Passkey[0].Trials.Count}.");
        return ExitCodes.Success;
    }
}
