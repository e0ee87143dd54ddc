using System.ComponentModel;
using System.Globalization;
using LongContext.Attention;
using LongContext.Demo.Experiment;
using LongContext.Llama;
using LongContext.Llama.Evaluation;
using LongContext.Llama.FineTuning;
using LongContext.Llama.Generation;
using LongContext.Quantization;
using LongContext.Text.Corpus;
using LongContext.Text.Tokenization;
using LongContext.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Demo.Cli;

/// <summary>Options of the commands that load a model folder.</summary>
public class ModelSettings : CommonSettings
{
    /// <summary>HF model folder.</summary>
    [CommandOption("--model <DIR>")]
    [Description("HF Llama checkpoint folder (config.json, safetensors, tokenizer files). Required.")]
    public string? Model { get; init; }

    /// <summary>Weight dtype.</summary>
    [CommandOption("--dtype <TYPE>")]
    [Description("Weights dtype: fp32, bf16 or fp16 (default fp32 on cpu, bf16 on cuda).")]
    public string? Dtype { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        if (!common.Successful) return common;
        if (Model is null) return ValidationResult.Error("--model <DIR> is required.");
        if (!Directory.Exists(Model))
            return ValidationResult.Error(File.Exists(Model) ? $"--model must be an HF Llama folder; got the file '{Model}'." : $"--model: folder '{Model}' does not exist.");
        if (MissingHfFile(Model) is { } missing)
            return ValidationResult.Error($"--model must be an HF Llama folder (config.json, {LlamaCheckpoint.WeightsFile} or {LlamaCheckpoint.IndexFile}, " +
                                          $"{HfTokenizer.TokenizerJsonName} or {HfTokenizer.SentencePieceModelName}); '{Model}' holds no {missing}.");
        if (Dtype is not (null or "fp32" or "bf16" or "fp16")) return ValidationResult.Error($"--dtype must be fp32, bf16 or fp16; got '{Dtype}'.");
        return ValidationResult.Success();
    }

    /// <summary>
    /// The first file an HF Llama folder needs that <paramref name="folder"/> lacks (its config, its weights, its tokenizer),
    /// or null when it has them all; what the files hold is checked when they are read.
    /// </summary>
    /// <param name="folder">An existing folder.</param>
    public static string? MissingHfFile(string folder)
    {
        bool Has(string name) => File.Exists(Path.Combine(folder, name));
        if (!Has("config.json")) return "config.json";
        if (!Has(LlamaCheckpoint.WeightsFile) && !Has(LlamaCheckpoint.IndexFile)) return $"weights ({LlamaCheckpoint.WeightsFile} or {LlamaCheckpoint.IndexFile})";
        if (!Has(HfTokenizer.TokenizerJsonName) && !Has(HfTokenizer.SentencePieceModelName))
            return $"tokenizer ({HfTokenizer.TokenizerJsonName} or {HfTokenizer.SentencePieceModelName})";
        return null;
    }

    /// <summary>The dtype in force.</summary>
    public ScalarType ScalarType => (Dtype ?? (Device == "cuda" ? "bf16" : "fp32")) switch
    {
        "bf16" => torch.ScalarType.BFloat16,
        "fp16" => torch.ScalarType.Float16,
        _ => torch.ScalarType.Float32,
    };
}

/// <summary>Options of <c>eval</c> and <c>generate</c>: an optional adapter over the model.</summary>
public class AdapterSettings : ModelSettings
{
    /// <summary>Adapter folder.</summary>
    [CommandOption("--adapter <DIR>")]
    [Description("Adapter folder written by extend (peft adapter + the PI config it was trained with).")]
    public string? Adapter { get; init; }

    /// <summary>NF4 base.</summary>
    [CommandOption("--quantize")]
    [Description("Load the base in NF4, as --method longqlora trained over it. Without it a longqlora adapter runs over the full-precision base (valid, as in peft, but not the model that was trained; an adapter file does not record which base it was trained over).")]
    public bool Quantize { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        if (!common.Successful) return common;
        if (Adapter is null) return ValidationResult.Success();
        if (!Directory.Exists(Adapter))
            return ValidationResult.Error(File.Exists(Adapter) ? $"--adapter must be a folder extend wrote; got the file '{Adapter}'." : $"--adapter: folder '{Adapter}' does not exist.");
        foreach (string file in new[] { "adapter_config.json", "adapter_model.safetensors", "config.json" })
            if (!File.Exists(Path.Combine(Adapter, file)))
                return ValidationResult.Error($"--adapter must be a folder extend wrote (adapter_config.json, adapter_model.safetensors and the config.json of the rope it was trained with); '{Adapter}' holds no {file}.");
        // The shapes, from the two config.json files, before any weight is read (a malformed file is an error of the file: exit code 1).
        if (LongLora.AdapterShapeDifferences(LlamaConfig.Load(Adapter), LlamaConfig.Load(Model!)) is { } differences)
            return ValidationResult.Error($"--adapter must be an adapter of the --model's shape; '{Adapter}' was trained on another model: {differences}.");
        return ValidationResult.Success();
    }

    /// <summary>Loads the model (and adapter) on the device.</summary>
    public LlamaForCausalLM Load(Device device)
    {
        var model = Phases.Run($"load {Path.GetFileName(Path.GetFullPath(Model!))}", 1, report =>
        {
            var m = LlamaCheckpoint.Load(Model!, ScalarType, device);
            if (Quantize) ModelQuantizer.Quantize(m, new QuantizationOptions());
            if (Adapter is not null) LongLora.LoadAdapter(m, Adapter);
            report(1, "");
            return m;
        });
        foreach (string warning in model.Config.Warnings) AnsiConsole.MarkupLine($"[yellow]warning:[/] {Markup.Escape(warning)}");
        model.eval();
        return model;
    }
}

/// <summary>Corpus input shared by <c>extend</c> and <c>eval</c>.</summary>
public static class CorpusInput
{
    /// <summary>The source of one <c>--corpus</c> path: a .jsonl file, or a .txt file or folder of them.</summary>
    /// <param name="path">The path.</param>
    /// <exception cref="FileNotFoundException">The path does not exist, or a folder holds no .txt file.</exception>
    public static CorpusSource Source(string path) =>
        path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? CorpusSource.Jsonl(path) : CorpusSource.TextFiles(path);

    /// <summary>
    /// The <c>--corpus</c> error for the paths given (none given, one missing, a folder without .txt files, no text at
    /// all), or null when there is text to read; whether it is enough is known once it is tokenized.
    /// </summary>
    /// <param name="paths">The <c>--corpus</c> values.</param>
    public static string? Problem(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Count == 0) return "--corpus <PATH> is required.";
        long bytes = 0;
        foreach (string path in paths)
        {
            if (!File.Exists(path) && !Directory.Exists(path)) return $"--corpus: '{path}' does not exist.";
            try
            {
                bytes += Source(path).TotalBytes;
            }
            catch (FileNotFoundException)
            {
                return $"--corpus must be a .txt file, a folder of .txt files or a .jsonl file; the folder '{path}' holds no .txt file.";
            }
        }
        return bytes == 0 ? $"--corpus must hold text; '{string.Join("', '", paths)}' {(paths.Count == 1 ? "is" : "are")} empty." : null;
    }

    /// <summary>Documents' ids from text files (a .txt file or a folder of them) or a .jsonl file ("text" field).</summary>
    /// <param name="paths">Files or folders.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="maxTokens">Stop after this many tokens (null: all).</param>
    public static List<int[]> Documents(IEnumerable<string> paths, ITextTokenizer tokenizer, long? maxTokens = null)
    {
        var sources = paths.Select(Source).ToList();
        long bytes = sources.Sum(s => s.TotalBytes);
        return Phases.Run("tokenize corpus", bytes, report =>
        {
            var documents = new List<int[]>();
            long done = 0, tokens = 0;
            foreach (var source in sources)
                foreach (var document in source.Documents())
                {
                    int[] ids = tokenizer.Encode(document.Text, addSpecialTokens: false);
                    documents.Add(ids);
                    tokens += ids.Length;
                    done += System.Text.Encoding.UTF8.GetByteCount(document.Text);
                    report(done, $"{tokens:N0} tokens");
                    if (maxTokens is long max && tokens >= max) return documents;
                }
            return documents;
        });
    }
}

/// <summary>Options of <c>extend</c>.</summary>
public sealed class ExtendSettings : ModelSettings
{
    /// <summary>
    /// Seed of the LoRA initialization and of dropout (null: 1); the rows are served in corpus order, so a seed given
    /// where nothing is drawn (every weight trained, no attention dropout) is refused rather than ignored.
    /// </summary>
    [CommandOption("--seed <N>")]
    [Description("Seed of the LoRA initialization and of dropout (default 1); the corpus's rows are served in order.")]
    public int? Seed { get; init; }

    /// <summary>Corpus.</summary>
    [CommandOption("--corpus <PATH>")]
    [Description("Training text: .txt files (a file or a folder) or a .jsonl file with a \"text\" field; repeat for several. Required.")]
    public string[] Corpus { get; init; } = [];

    /// <summary>Target context.</summary>
    [CommandOption("--target-length <N>")]
    [Description("Context to extend to, in tokens (rows of this length; PI factor ceil(N / original)): at least the model's context, a multiple of 8 for longlora and longqlora (S2-Attn's 4 groups). Required.")]
    public int? TargetLength { get; init; }

    /// <summary>Method.</summary>
    [CommandOption("--method <NAME>")]
    [Description("longlora (PI + S2 + LoRA + embed/norm, default), longqlora (the same over an NF4 base), pi-lora (full attention), extrapolation (no PI), llama3-lora (Llama 3.1 rope scaling + LoRA, full attention), extrapolation-full / pi-full (every weight trained; the whole model is saved to OUTPUT/model).")]
    [DefaultValue("longlora")]
    public string Method { get; init; } = "longlora";

    /// <summary>Updates.</summary>
    [CommandOption("--steps <N>")]
    [Description("Optimizer updates (default 1000, LongLoRA's).")]
    [DefaultValue(1000)]
    public int Steps { get; init; } = 1000;

    /// <summary>Rows per micro-batch.</summary>
    [CommandOption("--batch <N>")]
    [Description("Rows per micro-batch (default 1).")]
    [DefaultValue(1)]
    public int Batch { get; init; } = 1;

    /// <summary>Gradient accumulation.</summary>
    [CommandOption("--grad-accum <N>")]
    [Description("Micro-batches per update (default 8, LongLoRA's).")]
    [DefaultValue(8)]
    public int GradAccum { get; init; } = 8;

    /// <summary>Learning rate.</summary>
    [CommandOption("--lr <X>")]
    [Description("Learning rate (default 2e-5, LongLoRA's; constant after 20 warmup updates).")]
    [DefaultValue(2e-5)]
    public double LearningRate { get; init; } = 2e-5;

    /// <summary>Checkpointing.</summary>
    [CommandOption("--no-gradient-checkpointing")]
    [Description("Store activations instead of recomputing each layer in backward (faster, much more memory).")]
    public bool NoGradientCheckpointing { get; init; }

    /// <summary>Output folder.</summary>
    [CommandOption("--output <DIR>")]
    [Description("Run folder, new, empty or a previous run's: train_log.csv, training_state.safetensors, adapter/ or model/ (default extend-output).")]
    [DefaultValue("extend-output")]
    public string Output { get; init; } = "extend-output";

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        if (!common.Successful) return common;
        if (Seed is int given && SeedError(given) is { } seed) return seed;
        if (CorpusInput.Problem(Corpus) is { } corpus) return ValidationResult.Error(corpus);
        if (OutputFolders.Problem("--output", Output, Runs.RunFolderEntries, marker: LongLoraTrainer.LogFile) is { } output) return ValidationResult.Error(output);
        if (TargetLength is not int target || target < 16)
            return ValidationResult.Error($"--target-length <N> is required and at least 16; got {TargetLength?.ToString(CultureInfo.InvariantCulture) ?? "none"}.");
        if (!Methods.Extensions.Select(Methods.Key).Contains(Method))
            return ValidationResult.Error($"--method must be one of {string.Join(", ", Methods.Extensions.Select(Methods.Key))}; got '{Method}'.");
        foreach (var (option, value) in new[] { ("--steps", Steps), ("--batch", Batch), ("--grad-accum", GradAccum) })
            if (value < 1) return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture, $"{option} must be at least 1; got {value}."));
        if ((long)Batch * GradAccum > int.MaxValue)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture, $"--batch x --grad-accum must be at most {int.MaxValue}; got {Batch} x {GradAccum}."));
        if (!double.IsFinite(LearningRate) || LearningRate <= 0)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture, $"--lr must be a positive number; got {LearningRate}."));
        var config = LlamaConfig.Load(Model!);
        long context = LongLora.ContextLength(config);
        if (target < context)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--target-length must be at least the model's context of {context} tokens (extend lengthens it); got {target}."));
        if (Seed is int unused && Methods.TrainsEveryWeight(Methods.Parse(Method)) && config.AttentionDropout == 0)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--seed must be left out with --method {Method} on this model: nothing is drawn (no LoRA to initialize, attention_dropout 0), so it would have no effect; got {unused}."));
        if (Methods.UsesS2(Methods.Parse(Method)))
        {
            try
            {
                S2GroupLayout.GroupSize(target, LongLoraOptions.DefaultS2.GroupSizeRatio);
            }
            catch (ArgumentException)
            {
                return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                    $"--target-length must be a multiple of 8 for --method {Method} (S2-Attn splits each row into 4 groups of an even size); got {target}."));
            }
        }
        return ValidationResult.Success();
    }
}

/// <summary>Fine-tunes a model folder to a longer context with the same code path as the demo's methods.</summary>
public sealed class ExtendCommand : Command<ExtendSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, ExtendSettings settings, CancellationToken cancellationToken)
    {
        var device = settings.TorchDevice();
        int target = settings.TargetLength!.Value;
        using var tokenizer = HfTokenizer.Load(settings.Model!);
        long rowsNeeded = (long)settings.Steps * settings.Batch * settings.GradAccum;
        var documents = CorpusInput.Documents(settings.Corpus, tokenizer, rowsNeeded * target);
        long corpusTokens = documents.Sum(d => (long)d.Length);
        // Checked before packing: a row buffer of an impossible length is never allocated.
        var rows = corpusTokens < target ? []
            : CorpusPacker.Pack(documents, tokenizer.SpecialTokens, new PackingOptions { RowLength = target }).Where(r => r.Length == target).ToList();
        if (rows.Count == 0)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"--corpus gives {corpusTokens:N0} tokens, not one full row of --target-length {target}; give a longer corpus or a shorter --target-length."));
        if (rows.Count < settings.Batch)   // a micro-batch takes distinct rows
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"--corpus gives {rows.Count} rows of --target-length {target}, fewer than --batch {settings.Batch} (a micro-batch's rows); give a longer corpus or a smaller --batch."));
        if (rows.Count < rowsNeeded)
            AnsiConsole.MarkupLine(Markup.Escape($"note: the corpus gives {rows.Count} rows of {target} tokens; {rowsNeeded} updates' worth are served by repeating them in order."));
        long[] ids = rows.SelectMany(r => r.InputIds.Select(i => (long)i)).ToArray();
        using var model = LlamaCheckpoint.Load(settings.Model!, settings.ScalarType, device);
        torch.manual_seed(settings.Seed ?? 1);
        Method method = Methods.Parse(settings.Method);
        var report = Methods.Prepare(model, method, target, gradientCheckpointing: !settings.NoGradientCheckpointing);
        string trained = report is null ? $"every weight trained: {model.parameters().Sum(p => p.numel()):N0} parameters" : report.Parameters.ToString();
        AnsiConsole.MarkupLine(Markup.Escape($"{Methods.Label(method)} to {target} tokens (rope {model.Config.Rope.Type}, factor {model.Config.Rope.Factor}); {trained}."));
        var summary = Runs.Train(model, $"extend to {target}", ids, ids, target, settings.Steps, settings.Batch * settings.GradAccum,
            new AdamWOptions { LearningRate = settings.LearningRate }, schedule: null, settings.Output, saveAdapter: Methods.HasAdapter(method), microBatches: settings.GradAccum);
        string saved = summary.Result.AdapterFolder is { } adapter ? $"adapter in {adapter}" : $"model in {Path.Combine(settings.Output, Runs.ModelFolderName)}";
        if (summary.Result.AdapterFolder is null)
            TinyBase.SaveModelFolder(model, Path.Combine(settings.Output, Runs.ModelFolderName), settings.ScalarType, tokenizerFolder: settings.Model!);
        AnsiConsole.MarkupLine(Markup.Escape($"Done: final loss {summary.FinalLoss:F3}, {summary.TokensPerSecond:F0} tokens/s, peak RSS {PeakMemory.PeakBytes() / 1048576.0:F0} MiB; {saved}."));
        return ExitCodes.Success;
    }
}

/// <summary>Options of <c>eval</c>.</summary>
public sealed class EvalSettings : AdapterSettings
{
    /// <summary>Corpus.</summary>
    [CommandOption("--corpus <PATH>")]
    [Description("Held-out text (.txt file/folder or .jsonl), tokenized and joined by EOS; or use --tokens.")]
    public string[] Corpus { get; init; } = [];

    /// <summary>Token file.</summary>
    [CommandOption("--tokens <FILE>")]
    [Description("A raw uint16 token file (LongLoRA's PG19/proof-pile test.bin) instead of --corpus.")]
    public string? Tokens { get; init; }

    /// <summary>Lengths.</summary>
    [CommandOption("--lengths <LIST>")]
    [Description("Comma-separated distinct context lengths, at least 16 each, and room for the passkey prompt (about 110 tokens) unless --passkey-trials 0 (default 4096,8192,16384).")]
    [DefaultValue("4096,8192,16384")]
    public string Lengths { get; init; } = "4096,8192,16384";

    /// <summary>Cap on tokens.</summary>
    [CommandOption("--eval-tokens <N>")]
    [Description("Use at most this many tokens of the stream, of --corpus or --tokens (default 1,048,576).")]
    [DefaultValue(1048576)]
    public int EvalTokens { get; init; } = 1048576;

    /// <summary>Passkey trials.</summary>
    [CommandOption("--passkey-trials <N>")]
    [Description("Passkey trials per length (default 10, LongLoRA's; 0 skips).")]
    [DefaultValue(10)]
    public int PasskeyTrials { get; init; } = 10;

    /// <summary>Output folder.</summary>
    [CommandOption("--output <DIR>")]
    [Description("Folder for evaluation.md, perplexity.csv, passkey.csv, evaluation.png: new, empty or a previous eval's (default eval-output).")]
    [DefaultValue("eval-output")]
    public string Output { get; init; } = "eval-output";

    /// <summary>Parsed lengths (distinct, each at least 16, once <see cref="Validate"/> succeeded).</summary>
    /// <exception cref="FormatException"><see cref="Lengths"/> is not a list of integers.</exception>
    public int[] LengthList => ParseLengths(Lengths) ?? throw new FormatException($"--lengths must be comma-separated integers; got '{Lengths}'.");

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        if (!common.Successful) return common;
        if ((Corpus.Length == 0) == (Tokens is null)) return ValidationResult.Error("give exactly one of --corpus <PATH> and --tokens <FILE>.");
        if (Corpus.Length > 0 && CorpusInput.Problem(Corpus) is { } corpus) return ValidationResult.Error(corpus);
        if (Tokens is not null && !File.Exists(Tokens))
            return ValidationResult.Error(Directory.Exists(Tokens) ? $"--tokens must be a uint16 token file; got the folder '{Tokens}'." : $"--tokens: '{Tokens}' does not exist.");
        if (OutputFolders.Problem("--output", Output, OutputEntries) is { } output) return ValidationResult.Error(output);
        if (ParseLengths(Lengths) is not { Length: > 0 } lengths || lengths.Any(l => l < 16) || lengths.Distinct().Count() != lengths.Length)
            return ValidationResult.Error($"--lengths must be a comma-separated list of distinct integers of at least 16; got '{Lengths}'.");
        if (PasskeyTrials < 0) return ValidationResult.Error($"--passkey-trials must be non-negative; got {PasskeyTrials}.");
        long needed = MinimumTokens(lengths);
        if (EvalTokens < needed)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--eval-tokens must be at least {needed} for --lengths {Lengths} (LongLoRA's windows: the longest length + {PerplexityWindows.LongLoraStep}, and the last window is dropped); got {EvalTokens}."));
        return PasskeyTrials > 0 ? PasskeyFits(lengths) : ValidationResult.Success();
    }

    /// <summary>What eval writes in <see cref="Output"/>: the report's files (<see cref="EvaluationReport.Write"/> replaces a previous eval's, and removes those of a measure this one skips).</summary>
    public static IReadOnlyList<string> OutputEntries => EvaluationReport.FileNames;

    /// <summary>The fewest tokens of the stream that give every length one LongLoRA window (more than the length + the step: the last window is dropped).</summary>
    /// <param name="lengths">The lengths.</param>
    public static long MinimumTokens(IReadOnlyList<int> lengths) => (long)lengths.Max() + PerplexityWindows.LongLoraStep + 1;

    /// <summary>
    /// Whether every length can hold the passkey prompt in this model's tokenizer, by the passkey test's own limits
    /// (<see cref="PasskeyRetrieval.ShortestTokenBudget"/> at the seed of each trial; <see cref="PasskeyRetrieval.LongestTokenBudget"/>
    /// at seed 0 only, since the trials differ in the key alone and each limit is an encoding of the whole filler); the
    /// tokenizer is loaded here for it.
    /// </summary>
    private ValidationResult PasskeyFits(int[] lengths)
    {
        using var tokenizer = HfTokenizer.Load(Model!);
        int shortest = Enumerable.Range(0, PasskeyTrials).Max(seed => PasskeyRetrieval.ShortestTokenBudget(tokenizer, seed));
        if (lengths.Min() < shortest)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--lengths must be at least {shortest} with --passkey-trials above 0 (the passkey prompt's fixed sentences take {shortest} tokens of this tokenizer; --passkey-trials 0 skips the test); got '{Lengths}'."));
        int longest = PasskeyRetrieval.LongestTokenBudget(tokenizer, 0);
        if (lengths.Max() >= longest)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--lengths must be below {longest} with --passkey-trials above 0 (the passkey prompt's filler, repeated as LongLoRA repeats it, takes {longest} tokens of this tokenizer; --passkey-trials 0 skips the test); got '{Lengths}'."));
        return ValidationResult.Success();
    }

    /// <summary>Comma-separated non-negative integers, or null when one is not (an empty item, as in "128,,256", included).</summary>
    private static int[]? ParseLengths(string list)
    {
        var lengths = new List<int>();
        foreach (string item in list.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out int length)) return null;
            lengths.Add(length);
        }
        return lengths.ToArray();
    }
}

/// <summary>Perplexity and passkey by length for a model folder (+ adapter), the demo's evaluation code path.</summary>
public sealed class EvalCommand : Command<EvalSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, EvalSettings settings, CancellationToken cancellationToken)
    {
        var device = settings.TorchDevice();
        using var tokenizer = HfTokenizer.Load(settings.Model!);
        TokenSequence tokens;
        if (settings.Tokens is not null)
        {
            tokens = TokenSequence.FromFile(settings.Tokens);
            if (tokens.Count > settings.EvalTokens)   // --eval-tokens caps the stream of --tokens too
            {
                using var file = tokens;
                tokens = TokenSequence.FromArray(file.Read(0, settings.EvalTokens, LlamaConfig.Load(settings.Model!).VocabSize));
                AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"Using the first {tokens.Count:N0} of the {file.Count:N0} tokens of {settings.Tokens} (--eval-tokens).")));
            }
        }
        else
        {
            var documents = CorpusInput.Documents(settings.Corpus, tokenizer, settings.EvalTokens);
            var stream = CorpusPacker.Pack(documents, tokenizer.SpecialTokens, new PackingOptions { RowLength = 4096 })
                .SelectMany(r => r.InputIds.Take(r.Length)).Take(settings.EvalTokens).Select(i => (long)i).ToArray();
            tokens = TokenSequence.FromArray(stream);
        }
        using (tokens)
        {
            if (tokens.Count < EvalSettings.MinimumTokens(settings.LengthList))
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"{(settings.Tokens is null ? "--corpus" : "--tokens")} gives {tokens.Count:N0} tokens; --lengths {settings.Lengths} needs at least {EvalSettings.MinimumTokens(settings.LengthList)} (LongLoRA's windows: the longest length + {PerplexityWindows.LongLoraStep}, and the last window is dropped)."));
            using var model = settings.Load(device);
            // The report's Write removes a previous eval's files of a measure this one skips (a passkey.csv with --passkey-trials 0).
            var report = Runs.Evaluate(model, "evaluate", tokens, tokenizer, settings.LengthList, settings.PasskeyTrials, outputFolder: settings.Output);
            AnsiConsole.WriteLine(report.ToMarkdown());
            AnsiConsole.MarkupLine(Markup.Escape($"Wrote {string.Join(", ", report.FilesToWrite())} to {Path.GetFullPath(settings.Output)}."));
        }
        return ExitCodes.Success;
    }
}

/// <summary>Options of <c>generate</c>.</summary>
public sealed class GenerateSettings : AdapterSettings
{
    /// <summary>Seed of the sampling (null: 1); greedy decoding draws nothing, so a seed with it is refused rather than ignored.</summary>
    [CommandOption("--seed <N>")]
    [Description("Seed of the sampling, with --temperature above 0 (default 1).")]
    public int? Seed { get; init; }

    /// <summary>Prompt.</summary>
    [CommandOption("--prompt <TEXT>")]
    [Description("The prompt. Required.")]
    public string? Prompt { get; init; }

    /// <summary>New tokens.</summary>
    [CommandOption("--max-new-tokens <N>")]
    [Description("Tokens to generate at most, within the model's context with the prompt (default 64).")]
    [DefaultValue(64)]
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>Temperature.</summary>
    [CommandOption("--temperature <X>")]
    [Description("0 for greedy (default); otherwise sampling at this temperature (seeded by --seed).")]
    [DefaultValue(0.0)]
    public double Temperature { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var common = base.Validate();
        if (!common.Successful) return common;
        if (Seed is int given && SeedError(given) is { } seed) return seed;
        if (Prompt is null) return ValidationResult.Error("--prompt <TEXT> is required.");
        if (string.IsNullOrWhiteSpace(Prompt)) return ValidationResult.Error($"--prompt must be text to continue; got '{Prompt}'.");
        if (MaxNewTokens < 1) return ValidationResult.Error($"--max-new-tokens must be at least 1; got {MaxNewTokens}.");
        if (Temperature < 0 || !double.IsFinite(Temperature)) return ValidationResult.Error($"--temperature must be 0 or positive; got {Temperature}.");
        if (Seed is int unused && Temperature == 0)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--seed must be left out with greedy decoding (--temperature 0, the default), which draws nothing; give a --temperature above 0 to sample; got --seed {unused}."));
        // The prompt and the new tokens within the context the model (with the adapter's rope) was trained for.
        long context = LongLora.ContextLength(LlamaConfig.Load(Adapter ?? Model!));
        int promptTokens;
        using (var tokenizer = HfTokenizer.Load(Model!)) promptTokens = tokenizer.Encode(Prompt).Length;
        if (promptTokens >= context)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--prompt must be shorter than the model's context of {context} tokens; got {promptTokens} tokens."));
        if (promptTokens + (long)MaxNewTokens > context)
            return ValidationResult.Error(string.Create(CultureInfo.InvariantCulture,
                $"--max-new-tokens must be at most {context - promptTokens} (the model's context of {context} tokens less the prompt's {promptTokens}); got {MaxNewTokens}."));
        return ValidationResult.Success();
    }
}

/// <summary>Generates from a model folder (+ adapter) with the KV cache.</summary>
public sealed class GenerateCommand : Command<GenerateSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, GenerateSettings settings, CancellationToken cancellationToken)
    {
        var device = settings.TorchDevice();
        using var tokenizer = HfTokenizer.Load(settings.Model!);
        using var model = settings.Load(device);
        var generator = new LlamaGenerator(model);
        var options = new DecodingOptions
        {
            MaxNewTokens = settings.MaxNewTokens,
            Greedy = settings.Temperature == 0,
            Temperature = settings.Temperature == 0 ? 1.0 : settings.Temperature,
            Seed = settings.Temperature == 0 ? null : settings.Seed ?? 1,   // greedy draws nothing (the library refuses a seed there)
            StopTokenIds = tokenizer.SpecialTokens.Eos is int eos ? [eos] : [],
        };
        int[] prompt = tokenizer.Encode(settings.Prompt!);
        var result = generator.Generate(prompt, options);
        // Decoded with the prompt: a SentencePiece piece decoded alone loses its leading space.
        string text = tokenizer.Decode(prompt.Concat(result.TokenIds).ToArray(), skipSpecialTokens: true);
        AnsiConsole.WriteLine(text);
        AnsiConsole.MarkupLine(Markup.Escape($"[{result.TokenIds.Count} tokens, {result.Finish}]"));
        return ExitCodes.Success;
    }
}
