using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using LongContext.Demo.Experiment;
using LongContext.IO;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;

namespace LongContext.Demo.Cli;

/// <summary>Options of <c>demo</c>.</summary>
public sealed class DemoSettings : CommonSettings
{
    /// <summary>Seed of weights and data (every command that draws: not eval, whose passkey trials take LongLoRA's seeds 0..n-1).</summary>
    [CommandOption("--seed <N>")]
    [Description(SeedDescription)]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    /// <summary>Reduced sizes for CI.</summary>
    [CommandOption("--quick")]
    [Description("Reduced sizes for CI (under 3 minutes on 2 cores): 20 updates x 2 rows, 4096 evaluation tokens, 5 passkey trials. Same methods and checks.")]
    public bool Quick { get; init; }

    /// <summary>Results folder.</summary>
    [CommandOption("--output <DIR>")]
    [Description("Folder for results.csv, results.md, context_extension.png and the per-method training runs: new, empty or a previous demo's (default demo-output).")]
    [DefaultValue("demo-output")]
    public string Output { get; init; } = "demo-output";

    /// <summary>Base model folder.</summary>
    [CommandOption("--base <DIR>")]
    [Description("Pretrained base (made by the pretrain command, any size and L: the demo takes them from its manifest). Default: the shipped data/base; when the folder is new or empty, a base is pretrained there first.")]
    public string? Base { get; init; }

    /// <summary>The base folder: <see cref="Base"/>, or the shipped one.</summary>
    public string BaseFolder => Base ?? Path.Combine(DemoInputs.DataFolder, "base");

    /// <summary>RoPE base of the pretrained base.</summary>
    [CommandOption("--rope-theta <X>")]
    [Description("RoPE base of the base to pretrain when --base holds none (pretrain --rope-theta; default 10000, the shipped base's). With a base there, its manifest's must agree or the base is refused.")]
    public double? RopeTheta { get; init; }

    /// <summary>Attention heads of the pretrained base.</summary>
    [CommandOption("--heads <N>")]
    [Description("Attention heads of the base to pretrain when --base holds none (pretrain --heads; default 4, the shipped base's). With a base there, its manifest's must agree or the base is refused.")]
    public int? Heads { get; init; }

    /// <summary>
    /// The base's settings. The base's manifest owns them when <see cref="BaseFolder"/> holds one (then
    /// <see cref="RopeTheta"/> and <see cref="Heads"/>, when given, must agree with it); otherwise they are the shipped
    /// base's with those two options, and a base is pretrained with them.
    /// </summary>
    /// <exception cref="SettingOutOfRangeException">--rope-theta or --heads out of range, or not the manifest's.</exception>
    /// <exception cref="InvalidDataException">The base's manifest is unreadable.</exception>
    public PretrainSettings Pretrain()
    {
        if (TinyBase.ReadSettings(BaseFolder) is { } saved)
        {
            if (RopeTheta is double t && t != saved.RopeTheta)
                throw SettingChecks.Bad(t, $"{saved.RopeTheta}, the RoPE base in {Path.Combine(BaseFolder, TinyBase.ManifestFile)}", nameof(PretrainSettings.RopeTheta));
            if (Heads is int h && h != saved.Heads)
                throw SettingChecks.Bad(h, $"{saved.Heads}, the heads in {Path.Combine(BaseFolder, TinyBase.ManifestFile)}", nameof(PretrainSettings.Heads));
            return saved;
        }
        var s = new PretrainSettings();
        if (RopeTheta is double theta) s = s with { RopeTheta = theta };
        if (Heads is int heads) s = s with { Heads = heads };
        return s.Validated();
    }

    /// <summary>Updates per method.</summary>
    [CommandOption("--steps <N>")]
    [Description("Fine-tuning updates of every method (default 150; --quick 20).")]
    public int? Steps { get; init; }

    /// <summary>Rows per update.</summary>
    [CommandOption("--batch <N>")]
    [Description("Rows of 4L tokens per update (default 4; --quick 2); the control takes 4x as many rows of L.")]
    public int? Batch { get; init; }

    /// <summary>Learning rate.</summary>
    [CommandOption("--lr <X>")]
    [Description("Peak learning rate of the fine-tuning (default 1e-3; constant after 20 warmup updates, LongLoRA's schedule).")]
    public double? LearningRate { get; init; }

    /// <summary>LoRA rank.</summary>
    [CommandOption("--lora-rank <N>")]
    [Description("LoRA rank, alpha = 2 x rank, at most the base's hidden and MLP sizes (default 8).")]
    public int? LoraRank { get; init; }

    /// <summary>Evaluation tokens.</summary>
    [CommandOption("--eval-tokens <N>")]
    [Description("Held-out tokens for perplexity (default 32768; --quick 4096).")]
    public int? EvalTokens { get; init; }

    /// <summary>Passkey trials.</summary>
    [CommandOption("--passkey-trials <N>")]
    [Description("Passkey trials per length (default 20; --quick 5).")]
    public int? PasskeyTrials { get; init; }

    /// <summary>Share of passkey rows in the fine-tuning data.</summary>
    [CommandOption("--passkey-fraction <X>")]
    [Description("Share of the fine-tuning rows that are passkey rows in LongLoRA's prompt format, in [[0, 1) (default 0.25, the pretraining's share).")]
    public double? PasskeyFraction { get; init; }

    /// <summary>Methods to run.</summary>
    [CommandOption("--methods <LIST>")]
    [Description("Comma-separated subset of: none, pi, extrapolation, pi-lora, longlora, longqlora, control, llama3-lora (default: these), and the opt-in extrapolation-full, pi-full (every weight trained; use a lower --lr, e.g. 1e-4).")]
    public string? MethodList { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        if (!common.Successful) return common;
        if (SeedError(Seed) is { } seed) return seed;
        PretrainSettings? baseSettings = null;   // the base's manifest is read once here
        var pretrain = Checked(() => baseSettings = Pretrain(), new Dictionary<string, string>
        {
            [nameof(PretrainSettings.RopeTheta)] = "--rope-theta", [nameof(PretrainSettings.Heads)] = "--heads",
        });
        if (!pretrain.Successful) return pretrain;
        // A folder without a base gets one pretrained into it: only a new or empty one, never a user's files.
        if (!File.Exists(Path.Combine(BaseFolder, TinyBase.ManifestFile))
            && OutputFolders.Problem("--base", BaseFolder, [], expected: $"a base made by pretrain (a folder with {TinyBase.ManifestFile}), or a new or empty folder to pretrain one into") is { } baseFolder)
            return ValidationResult.Error(baseFolder);
        if (OutputFolders.Problem("--output", Output, OutputEntries) is { } output)
            return ValidationResult.Error(output);
        var experiment = Checked(() => Experiment().Validated(baseSettings!.Context), OptionNames);   // --methods too: Experiment parses it, ParseMethods checks it
        if (!experiment.Successful) return experiment;
        if (Unused(Experiment().Methods) is { } unused) return ValidationResult.Error(unused);
        if (LoraRank is int rank && Math.Min(baseSettings!.Hidden, baseSettings.Intermediate) is var width && rank > width)   // rank(B A) <= the layer's width
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--lora-rank must be at most {width}, the narrowest layer the adapters wrap (hidden {baseSettings.Hidden}, MLP {baseSettings.Intermediate}): a higher rank adds nothing; got {rank}."));
        if (EvalTokens is int asked && DemoInputs.HeldOutTokens(DemoInputs.DataFolder) is var heldOut && asked > heldOut)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--eval-tokens must be at most {heldOut} (the held-out text, {KjvCorpus.FirstHeldOutBook}..Revelation); got {asked}."));
        return experiment;
    }

    /// <summary>What the demo writes in <see cref="Output"/>: the result files and the per-method runs.</summary>
    public static IReadOnlyList<string> OutputEntries { get; } = [ResultFiles.Csv, ResultFiles.Markdown, ResultFiles.Plot, ExtensionExperiment.RunsFolderName];

    /// <summary>
    /// The error of a fine-tuning option given with methods none of which it affects (--steps with --methods none,pi;
    /// --lora-rank with only methods that train every weight), or null: nothing given is ignored silently.
    /// </summary>
    /// <param name="methods">The methods that run.</param>
    private string? Unused(IReadOnlyList<Method> methods)
    {
        string list = string.Join(",", methods.Select(Methods.Key));
        bool trains = methods.Any(Methods.Trains), lora = methods.Any(Methods.HasAdapter);
        foreach (var (option, value, used) in new (string, object?, bool)[]
                 {
                     ("--steps", Steps, trains), ("--batch", Batch, trains), ("--lr", LearningRate, trains),
                     ("--passkey-fraction", PasskeyFraction, trains), ("--lora-rank", LoraRank, lora),
                 })
            if (value is not null && !used)
                return string.Create(CultureInfo.InvariantCulture,
                    $"{option} must be left out with --methods {list}: no method there {(trains ? "trains LoRA" : "fine-tunes")}, so it would have no effect; got {value}.");
        return null;
    }

    /// <summary>The methods asked for, in table order.</summary>
    /// <param name="list">Comma-separated keys, each named once.</param>
    /// <exception cref="SettingOutOfRangeException">
    /// The list names no method, a key that is none, a method twice or has an empty item (setting
    /// <see cref="ExperimentSettings.Methods"/>, so <see cref="Validate"/> reports it as <c>--methods</c>).
    /// </exception>
    public static IReadOnlyList<Method> ParseMethods(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var chosen = new List<Method>();
        try
        {
            chosen = list.Split(',', StringSplitOptions.TrimEntries).Select(Methods.Parse).ToList();
        }
        catch (ArgumentException)
        {
            chosen.Clear();
        }
        if (chosen.Count == 0 || chosen.Distinct().Count() != chosen.Count)
            throw SettingChecks.Bad($"'{list}'", $"a comma-separated list of one or more of {string.Join(", ", Methods.All.Select(Methods.Key))}, each once",
                nameof(ExperimentSettings.Methods));
        return Methods.All.Where(chosen.Contains).ToList();
    }

    private static readonly Dictionary<string, string> OptionNames = new()
    {
        [nameof(ExperimentSettings.Seed)] = "--seed", [nameof(ExperimentSettings.Steps)] = "--steps", [nameof(ExperimentSettings.Batch)] = "--batch",
        [nameof(ExperimentSettings.LearningRate)] = "--lr", [nameof(ExperimentSettings.LoraRank)] = "--lora-rank",
        [nameof(ExperimentSettings.EvalTokens)] = "--eval-tokens", [nameof(ExperimentSettings.PasskeyTrials)] = "--passkey-trials",
        [nameof(ExperimentSettings.PasskeyFraction)] = "--passkey-fraction", [nameof(ExperimentSettings.Methods)] = "--methods",
    };

    /// <summary>The experiment's sizes: the default run's (or <see cref="ExperimentSettings.QuickRun"/>'s), with what the options set.</summary>
    /// <exception cref="SettingOutOfRangeException">An option out of range.</exception>
    public ExperimentSettings Experiment()
    {
        var s = (Quick ? ExperimentSettings.QuickRun : new ExperimentSettings()) with { Seed = Seed };
        if (Steps is int steps) s = s with { Steps = steps };
        if (Batch is int batch) s = s with { Batch = batch };
        if (LearningRate is double lr) s = s with { LearningRate = lr };
        if (LoraRank is int rank) s = s with { LoraRank = rank };
        if (EvalTokens is int evalTokens) s = s with { EvalTokens = evalTokens };
        if (PasskeyTrials is int trials) s = s with { PasskeyTrials = trials };
        if (PasskeyFraction is double fraction) s = s with { PasskeyFraction = fraction };
        if (MethodList is not null) s = s with { Methods = ParseMethods(MethodList) };
        return s;
    }
}

/// <summary>The experiment of issue 16: every extension method on the same base, data and steps; table, CSV, PNG; the pattern checked.</summary>
public sealed class DemoCommand : Command<DemoSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, DemoSettings settings, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var device = settings.TorchDevice();
        var experiment = settings.Experiment();
        var pretrain = settings.Pretrain();
        string output = Path.GetFullPath(settings.Output);
        Directory.CreateDirectory(output);
        OutputFolders.Clear(output, DemoSettings.OutputEntries);   // a previous demo's: no run of a method this one skips is left beside its results
        string baseFolder = settings.BaseFolder;
        AnsiConsole.MarkupLine($"[bold]Context extension[/] of a tiny Llama ({pretrain.Layers} layers, d {pretrain.Hidden}, {pretrain.Heads} heads, RoPE base {pretrain.RopeTheta}) pretrained at L = {pretrain.Context} on the KJV, to 4L = {experiment.Factor * pretrain.Context}.");
        AnsiConsole.MarkupLine(Markup.Escape($"{experiment.Steps} updates x {experiment.Batch} rows of {experiment.Factor * pretrain.Context} tokens per method ({experiment.PasskeyFraction:P0} passkey rows), lr {experiment.LearningRate}, LoRA r {experiment.LoraRank}; eval: {experiment.EvalTokens} held-out tokens (Acts..Revelation), LongLoRA windows every {experiment.EvalStep}, {experiment.PasskeyTrials} passkey trials per length."));
        AnsiConsole.MarkupLine(Markup.Escape($"Machine: {Environment.ProcessorCount} cores, {torch.get_num_threads()} torch threads, load average {Pretraining.LoadAverage()} at the start; device {settings.Device}."));

        using var inputs = DemoInputs.Load(DemoInputs.DataFolder);
        if (!File.Exists(Path.Combine(baseFolder, TinyBase.ManifestFile)))
        {
            AnsiConsole.MarkupLine(Markup.Escape($"No base in '{baseFolder}': pretraining one there first ({pretrain.Steps} updates)."));
            Pretraining.Run(inputs, pretrain with { Seed = settings.Seed }, baseFolder, device).Dispose();
        }
        AnsiConsole.MarkupLine(Markup.Escape($"Base: {baseFolder} (SHA-256 checked against its manifest)."));

        var results = ExtensionExperiment.Run(inputs, baseFolder, pretrain, experiment, output, device);
        int l = pretrain.Context, target = experiment.Factor * l;
        int[] lengths = [l, 2 * l, target];
        var expectations = Expectations.Check(results, l, target);

        AnsiConsole.Write(ResultFiles.ConsoleTable(results, lengths));
        AnsiConsole.MarkupLine(Markup.Escape($"Peak memory: {PeakMemory.Description}. Passkey: LongLoRA's prompt sized to the length (token budget), greedy, exact match."));
        var comparison = ResultFiles.Comparison(results);
        AtomicFile.WriteAllText(Path.Combine(output, ResultFiles.Csv), ResultFiles.ToCsv(results, lengths));
        string header = string.Create(CultureInfo.InvariantCulture,
            $"Run: demo{(settings.Quick ? " --quick" : "")}, seed {settings.Seed}, {experiment.Steps} updates x {experiment.Batch} x {target} tokens ({experiment.PasskeyFraction:P0} passkey rows), lr {experiment.LearningRate}, LoRA r {experiment.LoraRank}, {experiment.EvalTokens} eval tokens, {experiment.PasskeyTrials} passkey trials; {Environment.ProcessorCount} cores, load average {Pretraining.LoadAverage()} at the end; {clock.Elapsed.TotalSeconds:F0} s.\n");
        AtomicFile.WriteAllText(Path.Combine(output, ResultFiles.Markdown), ResultFiles.ToMarkdown(results, lengths, expectations, header));
        comparison.WritePlot(Path.Combine(output, ResultFiles.Plot), $"Tiny Llama, L = {l} extended to {target}: perplexity (LongLoRA protocol)");

        AnsiConsole.MarkupLine("[bold]Expected pattern[/] (perplexity at 4L; thresholds fixed in Expectations.cs before measuring):");
        foreach (var e in expectations)
            AnsiConsole.MarkupLine($"  {(e.Held ? "[green]held[/]" : "[red]NOT reproduced[/]")}: {Markup.Escape(e.Claim)} [grey]({Markup.Escape(e.Measured)})[/]");
        AnsiConsole.MarkupLine(Markup.Escape($"Wrote {ResultFiles.Csv}, {ResultFiles.Markdown}, {ResultFiles.Plot} to {output} in {clock.Elapsed.TotalSeconds:F0} s (load average {Pretraining.LoadAverage()})."));
        bool complete = Expectations.Judged.All(experiment.Methods.Contains);
        if (expectations.All(e => e.Held)) return ExitCodes.Success;
        AnsiConsole.MarkupLine(complete
            ? "[yellow]The expected pattern was NOT reproduced by these measurements (see above); exit code 3.[/]"
            : $"[yellow]Not every judged method ran ({string.Join(", ", Expectations.Judged.Select(Methods.Key))}), so the pattern cannot be judged in full; exit code 3.[/]");
        return ExitCodes.PatternNotReproduced;
    }
}
