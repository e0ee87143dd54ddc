using LongContext.Llama.Evaluation;
using LongContext.Training;

namespace LongContext.Llama.FineTuning;

/// <summary>Settings of <see cref="LongLoraTrainer"/>, validated as they are set. Defaults follow LongLoRA's scripts.</summary>
public sealed record LongLoraTrainerOptions
{
    private readonly int _totalSteps = 1000;
    private readonly int _microBatchesPerStep = 1;
    private readonly AdamWOptions _adamW = new();
    private readonly double? _maxGradNorm = 1.0;
    private readonly int _lossChunkSize = ChunkedCausalLmLoss.DefaultChunkSize;
    private readonly int? _evaluateEvery;
    private readonly int? _saveStateEvery;
    private readonly string _outputFolder = "longlora-run";

    /// <summary>Optimizer updates of the run, at least 1. Default 1000 (LongLoRA's <c>max_steps</c>).</summary>
    public int TotalSteps { get => _totalSteps; init => _totalSteps = Guard.Positive(value, nameof(TotalSteps)); }

    /// <summary>Micro-batches per update (gradient accumulation), at least 1. Default 1 (LongLoRA: 8).</summary>
    public int MicroBatchesPerStep { get => _microBatchesPerStep; init => _microBatchesPerStep = Guard.Positive(value, nameof(MicroBatchesPerStep)); }

    /// <summary>AdamW settings. Default lr 2e-5, weight decay 0 (LongLoRA's).</summary>
    public AdamWOptions AdamW { get => _adamW; init => _adamW = value ?? throw new ArgumentNullException(nameof(AdamW)); }

    /// <summary>The schedule; null takes LongLoRA's constant after 20 warmup steps (fewer when the run is shorter).</summary>
    public LearningRateSchedule? Schedule { get; init; }

    /// <summary>Gradient-norm clipping threshold (HF's <c>max_grad_norm</c>); null turns clipping off. Default 1.0.</summary>
    public double? MaxGradNorm
    {
        get => _maxGradNorm;
        init => _maxGradNorm = value is null || (value > 0 && double.IsFinite(value.Value)) ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxGradNorm), value, $"{nameof(MaxGradNorm)} must be null or positive; got {value}.");
    }

    /// <summary>Positions per chunk of the loss, at least 1. Default 1024.</summary>
    public int LossChunkSize { get => _lossChunkSize; init => _lossChunkSize = Guard.Positive(value, nameof(LossChunkSize)); }

    /// <summary>Evaluate every this many updates (and after the last); null: never. Needs evaluation tokens.</summary>
    public int? EvaluateEvery
    {
        get => _evaluateEvery;
        init => _evaluateEvery = value is null ? null : Guard.Positive(value.Value, nameof(EvaluateEvery));
    }

    /// <summary>
    /// The periodic evaluation: perplexity at these settings, one protocol at one length (the log has one
    /// evaluation loss per check). Null (default): strided at the row length, stride = row length / 2, 8 windows.
    /// Setting it needs <see cref="EvaluateEvery"/>.
    /// </summary>
    public PerplexityOptions? Evaluation { get; init; }

    /// <summary>Save the training state every this many updates (and after the last); null: only after the last.</summary>
    public int? SaveStateEvery
    {
        get => _saveStateEvery;
        init => _saveStateEvery = value is null ? null : Guard.Positive(value.Value, nameof(SaveStateEvery));
    }

    /// <summary>
    /// Save the peft adapter at the end (<see cref="LongLora.SaveAdapter"/>). Default true. Set it to false for a
    /// model without LoRA layers (e.g. pretraining every parameter), which has no adapter to save.
    /// </summary>
    public bool SaveAdapter { get; init; } = true;

    /// <summary>Continue from the output folder's training state when it has one. Default true.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>
    /// Run a gen-0 garbage collection after every update. Default true. TorchSharp 0.107 leaves some small native
    /// allocations of every step to the finalizer: about 160 bytes behind each <c>Tensor.shape</c> read, more behind
    /// <c>chunk</c> and <c>split</c>, and the <c>Scalar</c> of an operator with a number. They are freed only when a
    /// collection comes. The gen-0 budget follows the L3 cache, so on a host with a large one hundreds of steps
    /// pass before the first collection. Meanwhile these allocations sit between the freed activation buffers and
    /// keep the C allocator from reusing that space, and the resident set grows with every step. Measured on the main
    /// program (BENCHMARKS.md, "Host memory"), on a 260 MiB-L3 Xeon: the peak resident set of the LongQLoRA method
    /// (fine-tuning and evaluation) fell from 2.5 GiB to 0.6 GiB, and that of PI + LoRA from 0.95 to 0.54 GiB.
    /// Tokens/s stayed within the run-to-run noise, and the trained weights are bit for bit the same. A collection
    /// took 0.76 ms on average (at most 5.8 ms) against updates of about 120 ms. Device memory is not affected
    /// either way.
    /// </summary>
    public bool CollectGarbageEveryStep { get; init; } = true;

    /// <summary>Folder of the CSV log, the training state and the final adapter. Default "longlora-run".</summary>
    public string OutputFolder
    {
        get => _outputFolder;
        init => _outputFolder = !string.IsNullOrWhiteSpace(value) ? value : throw new ArgumentException($"{nameof(OutputFolder)} must name a folder.", nameof(OutputFolder));
    }

    /// <summary>Written as the adapter's <c>base_model_name_or_path</c>; needs <see cref="SaveAdapter"/>.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>The schedule in force: <see cref="Schedule"/> or LongLoRA's.</summary>
    public LearningRateSchedule EffectiveSchedule => Schedule ?? LearningRateSchedule.ConstantWithWarmup(Math.Min(20, TotalSteps), TotalSteps);

    /// <summary>
    /// Refuses settings that the others leave unused: <see cref="Evaluation"/> without <see cref="EvaluateEvery"/>,
    /// or running more than one protocol or length (only one loss is logged), and <see cref="BaseModelNameOrPath"/>
    /// without <see cref="SaveAdapter"/>, and <see cref="AdamW"/>'s decay rules without weight decay.
    /// <see cref="LongLoraTrainer"/>'s constructor calls it.
    /// </summary>
    /// <param name="paramName">The parameter the options came in as, for the exception.</param>
    internal void CheckSettingsUsed(string paramName)
    {
        _adamW.CheckSettingsUsed(paramName);
        if (Evaluation is { } evaluation)
        {
            if (_evaluateEvery is null)
                throw new ArgumentException(
                    $"{nameof(Evaluation)} is set and {nameof(EvaluateEvery)} is null, so no periodic evaluation runs; set {nameof(EvaluateEvery)} or leave {nameof(Evaluation)} null.", paramName);
            if (evaluation.Protocols.Count != 1 || evaluation.Lengths.Count != 1)
                throw new ArgumentException(
                    $"{nameof(Evaluation)} runs protocols [{string.Join(", ", evaluation.Protocols)}] at lengths [{string.Join(", ", evaluation.Lengths)}], " +
                    "and the trainer logs one evaluation loss per check; give one protocol and one length.", paramName);
            evaluation.CheckSettingsUsed(paramName);
        }
        if (BaseModelNameOrPath is not null && !SaveAdapter)
            throw new ArgumentException(
                $"{nameof(BaseModelNameOrPath)} '{BaseModelNameOrPath}' is written into the saved adapter, and {nameof(SaveAdapter)} is false (none is saved); " +
                $"set {nameof(SaveAdapter)} or leave {nameof(BaseModelNameOrPath)} null.", paramName);
    }
}
