using LongContext.Llama;
using LongContext.Llama.Evaluation;
using LongContext.Llama.FineTuning;
using LongContext.Text.Tokenization;
using LongContext.Training;
using TorchSharp;

namespace LongContext.Demo.Experiment;

/// <summary>What one training run did.</summary>
/// <param name="Result">The trainer's result (log, state, adapter).</param>
/// <param name="TokensPerSecond">Training tokens per second over the run.</param>
/// <param name="Seconds">Wall time of the run.</param>
/// <param name="FinalLoss">Mean loss of the last tenth of the updates.</param>
public sealed record TrainingSummary(TrainerResult Result, double TokensPerSecond, double Seconds, double FinalLoss);

/// <summary>The training and evaluation code paths every command shares (demo, pretrain, extend, eval).</summary>
public static class Runs
{
    /// <summary>The folder of a fully fine-tuned model inside a run folder (an HF folder with the tokenizer).</summary>
    public const string ModelFolderName = "model";

    /// <summary>What a training run writes in its folder: the trainer's log, state and adapter, or the whole model.</summary>
    public static IReadOnlyList<string> RunFolderEntries { get; } =
        [LongLoraTrainer.LogFile, LongLoraTrainer.StateFile, LongLoraTrainer.AdapterFolderName, ModelFolderName];

    /// <summary>
    /// Trains the model's trainable parameters with <see cref="LongLoraTrainer"/> on fixed rows, under a progress bar.
    /// </summary>
    /// <param name="model">A model prepared by the recipe (or plain, with <paramref name="saveAdapter"/> false).</param>
    /// <param name="title">Progress title.</param>
    /// <param name="ids">Row-major ids (rows x rowLength).</param>
    /// <param name="labels">Labels, same shape (-100 not scored).</param>
    /// <param name="rowLength">Tokens per row.</param>
    /// <param name="steps">Updates.</param>
    /// <param name="batch">Rows per update.</param>
    /// <param name="adamW">Optimizer settings.</param>
    /// <param name="schedule">Schedule, or null for LongLoRA's (constant after 20 warmup updates).</param>
    /// <param name="outputFolder">The trainer's folder (log, state, adapter).</param>
    /// <param name="saveAdapter">Save the peft adapter at the end.</param>
    /// <param name="microBatches">Micro-batches per update (gradient accumulation); the batch is split evenly.</param>
    public static TrainingSummary Train(LlamaForCausalLM model, string title, long[] ids, long[] labels, int rowLength, int steps, int batch,
        AdamWOptions adamW, LearningRateSchedule? schedule, string outputFolder, bool saveAdapter, int microBatches = 1)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(labels);
        if (batch % microBatches != 0) throw new ArgumentException($"batch {batch} is not a multiple of the micro-batches {microBatches}.", nameof(microBatches));
        long rows = ids.LongLength / rowLength;
        using var idTensor = torch.tensor(ids, dtype: torch.ScalarType.Int64).reshape(rows, rowLength);
        using var labelTensor = torch.tensor(labels, dtype: torch.ScalarType.Int64).reshape(rows, rowLength);
        using var batches = new TensorRowBatches(idTensor, labelTensor, batch / microBatches);
        var options = new LongLoraTrainerOptions
        {
            TotalSteps = steps,
            MicroBatchesPerStep = microBatches,
            AdamW = adamW,
            Schedule = schedule,
            OutputFolder = outputFolder,
            Resume = false,
            SaveAdapter = saveAdapter,
        };
        OutputFolders.Clear(outputFolder, RunFolderEntries);   // a fresh run, never a resumed one; nothing else in the folder is touched
        var trainer = new LongLoraTrainer(model, options);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TrainerResult result = Phases.Run(title, steps, report =>
            trainer.Train(batches, progress: p => report(p.Step, $"loss {p.Loss:F3} {p.TokensPerSecond:F0} tok/s")));
        var tail = result.Log.Skip(result.Log.Count - Math.Max(1, result.Log.Count / 10)).ToList();
        return new TrainingSummary(result, result.Log[^1].TokensPerSecond, clock.Elapsed.TotalSeconds, tail.Average(p => p.Loss));
    }

    /// <summary>
    /// LongLoRA's sliding-window perplexity (windows of L every <paramref name="step"/> tokens, scored whole) and
    /// passkey retrieval (greedy, exact match; prompts sized to the token budget) at each length, under a progress bar.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="title">Progress title.</param>
    /// <param name="tokens">Held-out stream.</param>
    /// <param name="tokenizer">The tokenizer (passkey prompts).</param>
    /// <param name="lengths">Context lengths.</param>
    /// <param name="passkeyTrials">Passkey trials per length (seeds 0..n-1); 0 skips the passkey test.</param>
    /// <param name="step">Distance between window starts (LongLoRA: 256).</param>
    /// <param name="outputFolder">When given, the library's report files are written there.</param>
    public static EvaluationReport Evaluate(LlamaForCausalLM model, string title, TokenSequence tokens, ITextTokenizer tokenizer,
        IReadOnlyList<int> lengths, int passkeyTrials, int step = PerplexityWindows.LongLoraStep, string? outputFolder = null)
    {
        var perplexity = new PerplexityOptions { Lengths = lengths, Protocols = [PerplexityProtocol.LongLora], Step = step };
        var passkey = passkeyTrials > 0
            ? new PasskeyOptions { Lengths = lengths, Trials = passkeyTrials, LengthMode = PasskeyLengthMode.TokenBudget }
            : null;
        long total = lengths.Sum(l => (long)SlidingWindowPerplexity.Windows(PerplexityProtocol.LongLora, tokens.Count, l, perplexity).Count)
                     + (long)lengths.Count * passkeyTrials;
        return Phases.Run(title, total, report =>
        {
            long done = 0;
            var progress = new SynchronousProgress(line => report(++done, line.Split(':')[0]));
            return LlamaEvaluation.Run(model, new EvaluationOptions { Perplexity = perplexity, Passkey = passkey }, tokens, tokenizer,
                decoder: new CachedGreedyDecoder(model), outputFolder: outputFolder, progress: progress);
        });
    }

    /// <summary>An <see cref="IProgress{T}"/> that calls back on the reporting thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }
}
