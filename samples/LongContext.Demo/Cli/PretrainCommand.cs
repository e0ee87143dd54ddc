using System.ComponentModel;
using LongContext.Demo.Experiment;
using Spectre.Console;
using Spectre.Console.Cli;

namespace LongContext.Demo.Cli;

/// <summary>Options of <c>pretrain</c>.</summary>
public sealed class PretrainSettingsCli : CommonSettings
{
    /// <summary>Seed of weights and data (every command that draws: not eval, whose passkey trials take LongLoRA's seeds 0..n-1).</summary>
    [CommandOption("--seed <N>")]
    [Description(SeedDescription)]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    /// <summary>Destination folder of the base.</summary>
    [CommandOption("--output <DIR>")]
    [Description("Folder to write the base to (config.json, model.safetensors in bf16, manifest.json): new, empty or a previous base. Default: base-model.")]
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
    [Description("Pretraining context L, 128..4096 (default 128; the passkey prompt needs about 110 tokens).")]
    public int? Context { get; init; }

    /// <summary>RoPE base (null: the record's default).</summary>
    [CommandOption("--rope-theta <X>")]
    [Description("RoPE base of the new model, above 1 (default 10000, the shipped base's and Llama-2's).")]
    public double? RopeTheta { get; init; }

    /// <summary>Attention heads (null: the record's default).</summary>
    [CommandOption("--heads <N>")]
    [Description("Attention heads, a divisor of --hidden (default 4: heads of 32 dimensions at the default hidden size 128; 1 gives Llama's 128-dimension heads).")]
    public int? Heads { get; init; }

    /// <summary>Hidden size (null: the record's default).</summary>
    [CommandOption("--hidden <N>")]
    [Description("Hidden size, a multiple of --heads (default 128).")]
    public int? Hidden { get; init; }

    /// <summary>Decoder layers (null: the record's default).</summary>
    [CommandOption("--layers <N>")]
    [Description("Decoder layers (default 3).")]
    public int? Layers { get; init; }

    /// <summary>MLP size (null: the record's default).</summary>
    [CommandOption("--intermediate <N>")]
    [Description("MLP size (default 384, 3 x the default hidden size).")]
    public int? Intermediate { get; init; }

    /// <summary>Peak learning rate (null: the record's default).</summary>
    [CommandOption("--lr <X>")]
    [Description("Peak learning rate, cosine schedule with 5 % warmup (default 2e-3).")]
    public double? LearningRate { get; init; }

    private static readonly Dictionary<string, string> OptionNames = new()
    {
        [nameof(PretrainSettings.Seed)] = "--seed", [nameof(PretrainSettings.Steps)] = "--steps", [nameof(PretrainSettings.Batch)] = "--batch",
        [nameof(PretrainSettings.Context)] = "--context", [nameof(PretrainSettings.RopeTheta)] = "--rope-theta", [nameof(PretrainSettings.Heads)] = "--heads",
        [nameof(PretrainSettings.Hidden)] = "--hidden", [nameof(PretrainSettings.Layers)] = "--layers", [nameof(PretrainSettings.Intermediate)] = "--intermediate",
        [nameof(PretrainSettings.LearningRate)] = "--lr",
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
        if (Hidden is int hidden) s = s with { Hidden = hidden };
        if (Layers is int layers) s = s with { Layers = layers };
        if (Intermediate is int intermediate) s = s with { Intermediate = intermediate };
        if (LearningRate is double lr) s = s with { LearningRate = lr };
        return s.Validated();
    }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        if (!common.Successful) return common;
        if (SeedError(Seed) is { } seed) return seed;
        if (OutputFolders.Problem("--output", Output, TinyBase.FolderEntries, marker: TinyBase.ManifestFile) is { } output) return ValidationResult.Error(output);
        return Checked(() => Settings(), OptionNames);
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
