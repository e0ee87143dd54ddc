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

    /// <summary>Updates (null: <see cref="PretrainSettings.Steps"/>'s default).</summary>
    [CommandOption("--steps <N>")]
    [Description("Optimizer updates (default 2000, the shipped base's).")]
    public int? Steps { get; init; }

    /// <summary>Rows per update (null: the record's default).</summary>
    [CommandOption("--batch <N>")]
    [Description("Rows of L tokens per update (default 16).")]
    public int? Batch { get; init; }

    /// <summary>L (null: the record's default).</summary>
    [CommandOption("--context <L>")]
    [Description("Pretraining context L, 64..4096 (default 128).")]
    public int? Context { get; init; }

    /// <summary>RoPE base (null: the record's default).</summary>
    [CommandOption("--rope-theta <X>")]
    [Description("RoPE base of the new model, above 1 (default 10000, the shipped base's and Llama-2's).")]
    public double? RopeTheta { get; init; }

    /// <summary>Attention heads (null: the record's default).</summary>
    [CommandOption("--heads <N>")]
    [Description("Attention heads, a divisor of the hidden size 128 (default 4: heads of 32 dimensions; 1 gives Llama's 128-dimension heads).")]
    public int? Heads { get; init; }

    private static readonly Dictionary<string, string> OptionNames = new()
    {
        [nameof(PretrainSettings.Seed)] = "--seed", [nameof(PretrainSettings.Steps)] = "--steps", [nameof(PretrainSettings.Batch)] = "--batch",
        [nameof(PretrainSettings.Context)] = "--context", [nameof(PretrainSettings.RopeTheta)] = "--rope-theta", [nameof(PretrainSettings.Heads)] = "--heads",
    };

    /// <summary>The pretraining settings: the record's defaults, with what the options set.</summary>
    /// <exception cref="SettingOutOfRangeException">An option out of range.</exception>
    public PretrainSettings Settings()
    {
        var s = new PretrainSettings { Seed = Seed };
        if (Steps is int steps) s = s with { Steps = steps };
        if (Batch is int batch) s = s with { Batch = batch };
        if (Context is int context) s = s with { Context = context };
        if (RopeTheta is double theta) s = s with { RopeTheta = theta };
        if (Heads is int heads) s = s with { Heads = heads };
        return s.Validated();
    }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        return common.Successful ? Checked(() => Settings(), OptionNames) : common;
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
        var pretrain = settings.Settings();
        using var model = Pretraining.Run(inputs, pretrain, settings.Output, device);
        using var tokens = inputs.EvaluationTokens(32768);
        var report = Runs.Evaluate(model, "held-out perplexity", tokens, inputs.Tokenizer, [pretrain.Context], passkeyTrials: 10);
        AnsiConsole.MarkupLine($"Base written to [bold]{Markup.Escape(Path.GetFullPath(settings.Output))}[/]: held-out ppl@{pretrain.Context} {report.Perplexity[0].Perplexity:F2}, passkey@{pretrain.Context} {report.Passkey[0].Correct}/{report.Passkey[0].Trials.Count}.");
        return ExitCodes.Success;
    }
}
