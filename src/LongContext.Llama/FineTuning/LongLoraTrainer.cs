using System.Diagnostics;
using System.Globalization;
using LongContext.Attention;
using LongContext.IO;
using LongContext.Llama.Evaluation;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama.FineTuning;

/// <summary>
/// A reference training loop built from the library's parts, for a model the LongLoRA recipe prepared
/// (<see cref="LongLora.Prepare"/>): AdamW over decay / no-decay groups of the trainable parameters, the schedule,
/// gradient accumulation normalised by labelled targets, the chunked loss, gradient clipping, a progress callback
/// (loss, tokens/s, ETA), a CSV log, periodic strided perplexity, the training state saved for resumption, and the
/// adapter saved at the end in peft's format (<see cref="LongLora.SaveAdapter"/>).
/// </summary>
/// <remarks>
/// Output folder: <see cref="LogFile"/>, <see cref="StateFile"/>, <see cref="AdapterFolderName"/>/. With
/// <see cref="LongLoraTrainerOptions.Resume"/> a run whose folder holds a state continues from it (same model
/// preparation, schedule and optimizer settings; the batches are sought to the saved cursor) and ends as the
/// uninterrupted run would. The trainer always saves the batches' cursor; a state without one (written by
/// <see cref="TrainingState.Save"/> with none) leaves the batches where they are.
/// </remarks>
public sealed class LongLoraTrainer
{
    /// <summary>File and folder names inside the output folder.</summary>
    public const string LogFile = "train_log.csv", StateFile = "training_state.safetensors", AdapterFolderName = "adapter";

    private const string LogHeader = "step,loss,learning_rate,grad_norm,tokens_per_second,elapsed_s,eval_loss";
    private readonly LlamaForCausalLM model;
    private readonly HashSet<long> checkedLengths = [];

    /// <summary>Creates a trainer for a prepared model (trainable parameters set, on its device).</summary>
    /// <param name="model">The model.</param>
    /// <param name="options">Run settings.</param>
    /// <exception cref="ArgumentException">A setting the others leave unused (see <see cref="LongLoraTrainerOptions.Evaluation"/>
    /// and <see cref="LongLoraTrainerOptions.BaseModelNameOrPath"/>).</exception>
    public LongLoraTrainer(LlamaForCausalLM model, LongLoraTrainerOptions options)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        ArgumentNullException.ThrowIfNull(options);
        options.CheckSettingsUsed(nameof(options));
        Options = options;
    }

    /// <summary>The settings in force.</summary>
    public LongLoraTrainerOptions Options { get; }

    /// <summary>Trains to <see cref="LongLoraTrainerOptions.TotalSteps"/> updates.</summary>
    /// <param name="batches">The training micro-batches.</param>
    /// <param name="evaluationTokens">Held-out tokens for the periodic evaluation; required when <see cref="LongLoraTrainerOptions.EvaluateEvery"/> is set.</param>
    /// <param name="progress">Called after every update, or null.</param>
    /// <exception cref="ArgumentException">
    /// Evaluation requested without tokens, tokens given without <see cref="LongLoraTrainerOptions.EvaluateEvery"/>, a stream too
    /// short for <see cref="LongLoraTrainerOptions.Evaluation"/>'s windows (all before any step); a row length the model cannot take; on resume, a saved data cursor that
    /// <paramref name="batches"/> rejects (the message names the state file, the cursor and the source's expected
    /// format; the source's exception is the inner one). Nothing is changed then: the model's parameters, the batches'
    /// position and the output folder are as they were.
    /// </exception>
    public TrainerResult Train(ITrainingBatches batches, TokenSequence? evaluationTokens = null, Action<TrainerProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(batches);
        if (Options.EvaluateEvery is not null && evaluationTokens is null)
            throw new ArgumentException($"{nameof(LongLoraTrainerOptions.EvaluateEvery)} is set but no evaluation tokens were given.", nameof(evaluationTokens));
        if (Options.EvaluateEvery is null && evaluationTokens is not null)
            throw new ArgumentException(
                $"evaluation tokens were given and {nameof(LongLoraTrainerOptions.EvaluateEvery)} is null, so nothing would read them; set {nameof(LongLoraTrainerOptions.EvaluateEvery)} or pass none.",
                nameof(evaluationTokens));
        if (Options.Evaluation is { } evaluation)      // the stream fits the windows: checked now, not after the first evaluation's steps
            _ = SlidingWindowPerplexity.Windows(evaluation.Protocols[0], evaluationTokens!.Count, evaluation.Lengths[0], evaluation);
        string folder = Path.GetFullPath(Options.OutputFolder);
        AtomicFile.CreateFolder(folder);
        string logPath = Path.Combine(folder, LogFile), statePath = Path.Combine(folder, StateFile), adapterPath = Path.Combine(folder, AdapterFolderName);
        LearningRateSchedule schedule = Options.EffectiveSchedule;

        model.train();
        using var optimizer = GroupedAdamW.ForModule(model, Options.AdamW);
        long start = 0;
        var logLines = new List<string> { LogHeader };
        if (Options.Resume && File.Exists(statePath))
        {
            TrainingResumePoint point = TrainingState.Load(statePath, optimizer, schedule, batches);
            start = point.Step;
            if (File.Exists(logPath))
                logLines = File.ReadAllLines(logPath).Take(1 + (int)start).ToList();
        }

        var records = new List<TrainerProgress>();
        var clock = Stopwatch.StartNew();
        long tokens = 0;
        int rowLength = 0;
        for (long step = start; step < Options.TotalSteps; step++)
        {
            double loss, norm, lr;
            using (var scope = NewDisposeScope())
            {
                var micro = Enumerable.Range(0, Options.MicroBatchesPerStep).Select(_ => batches.Next()).ToList();
                foreach (var (ids, _) in micro) CheckRowLength(ids);
                rowLength = (int)micro[0].InputIds.size(1);
                tokens += micro.Sum(b => b.InputIds.numel());
                Tensor head = LlamaHead.Weight(model);
                loss = GradientAccumulation.Run(micro, b => b.Labels,
                    b => ChunkedCausalLmLoss.ComputeSum(Hidden(b.InputIds, head.device), head, b.Labels.to(head.device), Options.LossChunkSize)).Loss;
                norm = GradientClipping.ClipByTotalNorm(optimizer.Parameters.Select(p => (Tensor)p.Parameter), Options.MaxGradNorm ?? double.MaxValue);
                schedule.Apply(optimizer.Optimizer, step);
                lr = optimizer.Optimizer.ParamGroups.First().LearningRate;
                optimizer.Step();
                optimizer.ZeroGrad();
            }
            if (Options.CollectGarbageEveryStep) GC.Collect(0, GCCollectionMode.Forced, blocking: true);
            long done = step + 1;
            bool last = done == Options.TotalSteps;
            double? evalLoss = Options.EvaluateEvery is int every && (done % every == 0 || last) ? Evaluate(evaluationTokens!, rowLength) : null;

            TimeSpan elapsed = clock.Elapsed;
            double perStep = elapsed.TotalSeconds / (done - start);
            var record = new TrainerProgress(done, Options.TotalSteps, loss, lr, norm, tokens / Math.Max(elapsed.TotalSeconds, 1e-9), elapsed,
                TimeSpan.FromSeconds(perStep * (Options.TotalSteps - done)), evalLoss);
            records.Add(record);
            logLines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{done},{loss:R},{lr:R},{norm:R},{record.TokensPerSecond:F1},{elapsed.TotalSeconds:F3},{(evalLoss is double e ? e.ToString("R", CultureInfo.InvariantCulture) : "")}"));
            WriteLog(logPath, logLines);
            if (last || (Options.SaveStateEvery is int save && done % save == 0))
                TrainingState.Save(statePath, optimizer, schedule, done, batches.Cursor);
            progress?.Invoke(record);
        }

        model.eval();
        if (Options.SaveAdapter) LongLora.SaveAdapter(model, adapterPath, Options.BaseModelNameOrPath);
        return new TrainerResult(Options.TotalSteps, start, records, logPath, statePath, Options.SaveAdapter ? adapterPath : null);
    }

    private Tensor Hidden(Tensor ids, Device device)
    {
        Tensor onDevice = ids.to(device);
        Tensor positions = torch.arange(onDevice.size(1), dtype: ScalarType.Int64, device: device).unsqueeze(0);
        return model.Model.forward(onDevice, positions, null);
    }

    private double Evaluate(TokenSequence tokens, int rowLength)
    {
        var options = Options.Evaluation ?? new PerplexityOptions
        {
            Lengths = [rowLength],
            Protocols = [PerplexityProtocol.Strided],
            Stride = Math.Max(1, rowLength / 2),
            MaxWindows = 8,
        };
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            return SlidingWindowPerplexity.Evaluate(new LlamaScorer(model, Options.LossChunkSize), tokens, options)[0].MeanLoss;
        }
        finally
        {
            model.train();
        }
    }

    /// <summary>A row length the model cannot take is an error naming it: beyond the context, or not fitting S2's groups.</summary>
    private void CheckRowLength(Tensor ids)
    {
        long length = ids.size(1);
        if (!checkedLengths.Add(length)) return;
        long context = LongLora.ContextLength(model.Config);
        if (length > context)
            throw new ArgumentException(
                $"training rows of {length} tokens exceed the model's context of {context} (max_position_embeddings {model.Config.MaxPositionEmbeddings}, rope {model.Config.Rope.Type}); apply Position Interpolation to at least {length} (LongLora.Prepare's TargetContextLength) first.",
                "batches");
        AttentionOptions? s2 = model.Model.Layers.Select(l => l.SelfAttention.Core.TrainingOptions).FirstOrDefault(a => a.Mode == AttentionMode.ShiftedSparse);
        if (s2 is null) return;
        try
        {
            S2GroupLayout.GroupSize(length, s2.GroupSizeRatio);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(
                $"training rows of {length} tokens do not fit S2 attention with group ratio {s2.GroupSizeRatio}: {e.Message} Use a row length whose group divides it (e.g. a multiple of {(int)Math.Round(2 / s2.GroupSizeRatio)}).",
                "batches", e);
        }
    }

    private static void WriteLog(string path, List<string> lines) => AtomicFile.WriteAllText(path, string.Join("\n", lines) + "\n");
}
