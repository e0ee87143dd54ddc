using LongContext.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// Saves and restores everything a run needs to continue as if it had not stopped: the trainable parameters by name
/// (adapter and trainable extras), AdamW's per-parameter state (<c>exp_avg</c>, <c>exp_avg_sq</c>, step), the group
/// learning rates, the optimizer step (the schedule position), the CPU random generator's state and the data
/// loader's opaque cursor. One <c>.safetensors</c> file, written to a temporary file in the same folder and renamed
/// over the destination, so a crash never leaves a half-written state.
/// </summary>
/// <remarks>
/// <para>File layout: tensors <c>parameter.&lt;name&gt;</c>, <c>exp_avg.&lt;name&gt;</c>, <c>exp_avg_sq.&lt;name&gt;</c> and
/// <c>rng.cpu</c> (uint8); the header metadata key <c>longcontext.training_state</c> holds a JSON document (version,
/// step, data cursor, schedule, AdamW hyper-parameters, groups with their learning rates and parameter names, steps
/// per parameter). Frozen base weights are not saved: load the base model as at the start, then the state.</para>
/// <para>Randomness: on the CPU the default generator's state is saved and restored, so a resumed run draws the
/// same dropout masks as an uninterrupted one, bit for bit. TorchSharp 0.107 cannot read the CUDA generator's state:
/// when CUDA is available, <see cref="Save"/> draws a seed from the CPU generator (whose state it then puts back),
/// seeds every CUDA generator with it and records it, and <see cref="Load"/> seeds them with the recorded value, so
/// the live and the resumed runs continue with the same CUDA random stream (which differs from a run that never
/// saved).</para>
/// </remarks>
public static class TrainingState
{
    private const string ParameterPrefix = "parameter.";
    private const string ExpAvgPrefix = "exp_avg.";
    private const string ExpAvgSqPrefix = "exp_avg_sq.";
    private const string CpuRngKey = "rng.cpu";

    /// <summary>Writes the training state atomically to <paramref name="path"/>.</summary>
    /// <param name="path">Destination <c>.safetensors</c> file; its folder is created when missing.</param>
    /// <param name="optimizer">The optimizer (its parameters are the trainable ones saved).</param>
    /// <param name="schedule">The schedule in force (recorded, checked on load).</param>
    /// <param name="step">Optimizer updates completed, non-negative.</param>
    /// <param name="dataCursor">The data loader's position, opaque to this library; null when the loader has none.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> is negative.</exception>
    public static void Save(string path, GroupedAdamW optimizer, LearningRateSchedule schedule, long step, string? dataCursor = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(schedule);
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, $"{nameof(step)} must be non-negative; got {step}.");

        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var steps = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (p, state) in optimizer.States())
        {
            tensors[ParameterPrefix + p.Name] = p.Parameter.detach();
            tensors[ExpAvgPrefix + p.Name] = state.exp_avg;
            tensors[ExpAvgSqPrefix + p.Name] = state.exp_avg_sq;
            steps[p.Name] = state.step;
        }
        Tensor cpuState = torch.random.get_rng_state();
        tensors[CpuRngKey] = cpuState;
        long? cudaSeed = null;
        if (torch.cuda.is_available())
        {
            cudaSeed = torch.randint(0, int.MaxValue, [1], dtype: ScalarType.Int64).item<long>();
            torch.random.set_rng_state(cpuState);
            torch.cuda.manual_seed_all(cudaSeed.Value);
        }

        var document = new TrainingStateFile
        {
            Version = TrainingStateFile.CurrentVersion,
            Step = step,
            DataCursor = dataCursor,
            Schedule = new(schedule.Kind, schedule.WarmupSteps, schedule.TotalSteps, schedule.Cycles),
            Optimizer = new(optimizer.Options.LearningRate, optimizer.Options.Beta1, optimizer.Options.Beta2, optimizer.Options.Epsilon,
                optimizer.Options.WeightDecay, Groups(optimizer), steps),
            CudaSeed = cudaSeed,
        };
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [TrainingStateFile.MetadataKey] = document.Serialize(),
        };
        SafetensorsFile.Save(path, tensors, metadata);   // atomic: staged beside the target, then renamed
    }

    /// <summary>
    /// Restores a state written by <see cref="Save"/> into <paramref name="optimizer"/> and its parameters, the random
    /// generators and, when given, <paramref name="batches"/>. Everything is checked before anything is changed: the
    /// document (version, non-negative steps), the same parameter names, shapes and dtypes, the same schedule and AdamW
    /// hyper-parameters, the generator state's size, and the saved data cursor, which <paramref name="batches"/> is
    /// sought to before any tensor is copied. A file rejected for any of these leaves the parameters, the optimizer,
    /// the generators and the batches as they were.
    /// </summary>
    /// <param name="path">The state file.</param>
    /// <param name="optimizer">A fresh optimizer over the same trainable parameters (model rebuilt and prepared as before).</param>
    /// <param name="schedule">The schedule of the resumed run; must equal the saved one.</param>
    /// <param name="batches">
    /// The run's batch source, sought to the saved cursor (left where it is when the state has none); null to seek
    /// nothing, and then a cursor the source would reject is found only after the tensors were restored.
    /// </param>
    /// <returns>The step and data cursor to continue from.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a training state of this version, holds a negative step, a negative or non-finite group learning rate or a malformed generator state, or its parameters do not match the optimizer's.</exception>
    /// <exception cref="ArgumentException">
    /// The schedule or the AdamW hyper-parameters differ from the saved ones; or <paramref name="batches"/> rejects
    /// the saved cursor (parameter <c>batches</c>; the message names the file, the cursor and the source, whose own
    /// exception, with its expected format, is the inner one).
    /// </exception>
    public static TrainingResumePoint Load(string path, GroupedAdamW optimizer, LearningRateSchedule schedule, ITrainingBatches? batches = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(schedule);
        if (!File.Exists(path)) throw new FileNotFoundException($"training state '{path}' does not exist.", path);
        IReadOnlyDictionary<string, string> metadata = SafetensorsFile.ReadMetadata(path);
        if (!metadata.TryGetValue(TrainingStateFile.MetadataKey, out string? json))
            throw new InvalidDataException($"'{path}' is not a training state: its safetensors metadata has no '{TrainingStateFile.MetadataKey}' entry.");
        TrainingStateFile document = TrainingStateFile.Parse(json, path);
        if (document.Version != TrainingStateFile.CurrentVersion)
            throw new InvalidDataException($"training state '{path}' has format version {document.Version}; this library reads version {TrainingStateFile.CurrentVersion}.");
        if (document.Step < 0)
            throw new InvalidDataException($"training state '{path}' has step {document.Step}; a saved step is a non-negative count of optimizer updates.");
        CheckSchedule(document.Schedule, schedule, path);
        CheckOptions(document.Optimizer, optimizer.Options, path);
        CheckGroups(document.Optimizer, optimizer, path);

        using var scope = NewDisposeScope();
        Dictionary<string, Tensor> tensors = SafetensorsFile.Load(path);
        var states = optimizer.States();
        foreach (var (p, _) in states)
        {
            CheckTensor(tensors, ParameterPrefix + p.Name, p.Parameter, path);
            CheckTensor(tensors, ExpAvgPrefix + p.Name, p.Parameter, path);
            CheckTensor(tensors, ExpAvgSqPrefix + p.Name, p.Parameter, path);
        }
        Tensor cpuState = CheckCpuRngState(tensors, path);

        // Checked; the batches' Seek is the one check left, made by the source itself (which leaves its position
        // unchanged when it rejects the cursor), so it runs before anything else is changed.
        if (batches is not null && document.DataCursor is string cursor) SeekSaved(batches, cursor, path);
        using (torch.no_grad())
        {
            foreach (var (p, state) in states)
            {
                p.Parameter.copy_(tensors[ParameterPrefix + p.Name]);
                state.exp_avg.copy_(tensors[ExpAvgPrefix + p.Name]);
                state.exp_avg_sq.copy_(tensors[ExpAvgSqPrefix + p.Name]);
                state.step = document.Optimizer.Steps[p.Name];
            }
        }
        var groups = optimizer.Optimizer.ParamGroups.ToList();
        for (int i = 0; i < groups.Count; i++)
        {
            groups[i].InitialLearningRate = document.Optimizer.Groups[i].InitialLearningRate;
            groups[i].LearningRate = document.Optimizer.Groups[i].LearningRate;
        }
        torch.random.set_rng_state(cpuState);
        if (document.CudaSeed is long seed && torch.cuda.is_available()) torch.cuda.manual_seed_all(seed);
        return new TrainingResumePoint(document.Step, document.DataCursor);
    }

    /// <summary>Seeks the batches to the state's cursor; a cursor the source rejects fails naming the state file, the cursor and the source.</summary>
    private static void SeekSaved(ITrainingBatches batches, string cursor, string path)
    {
        try
        {
            batches.Seek(cursor);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(
                $"training state '{path}' holds data cursor '{cursor}', which the batch source ({batches.GetType().Name}) rejects: {e.Message} " +
                "Resume with the kind of batch source the state was saved with, or start without this state.",
                nameof(batches), e);
        }
    }

    /// <summary>The saved CPU generator state: uint8, as many bytes as the generator's own state (what <c>set_rng_state</c> accepts).</summary>
    private static Tensor CheckCpuRngState(Dictionary<string, Tensor> tensors, string path)
    {
        if (!tensors.TryGetValue(CpuRngKey, out Tensor? cpuState) || cpuState.dtype != ScalarType.Byte)
            throw new InvalidDataException($"training state '{path}' has no uint8 '{CpuRngKey}' tensor (the CPU generator state).");
        long expected = torch.random.get_rng_state().numel();
        if (cpuState.dim() != 1 || cpuState.numel() != expected)
            throw new InvalidDataException(
                $"training state '{path}': '{CpuRngKey}' has shape [{string.Join(", ", cpuState.shape)}]; the CPU generator state is [{expected}] bytes.");
        return cpuState;
    }

    private static List<TrainingStateFile.GroupJson> Groups(GroupedAdamW optimizer)
    {
        var controllers = optimizer.Optimizer.ParamGroups.ToList();
        var members = new[] { optimizer.DecayGroup, optimizer.NoDecayGroup }.Where(g => g.Count > 0).ToList();
        return controllers.Select((c, i) => new TrainingStateFile.GroupJson(c.LearningRate, c.InitialLearningRate, members[i].Select(p => p.Name).ToList())).ToList();
    }

    private static void CheckSchedule(TrainingStateFile.ScheduleJson saved, LearningRateSchedule current, string path)
    {
        if (saved.Kind != current.Kind || saved.WarmupSteps != current.WarmupSteps || saved.TotalSteps != current.TotalSteps || saved.Cycles != current.Cycles)
            throw new ArgumentException(
                $"training state '{path}' was saved with schedule {saved.Kind} (warmup {saved.WarmupSteps}, total {saved.TotalSteps?.ToString() ?? "none"}, cycles {saved.Cycles}); " +
                $"the resumed run uses {current.Kind} (warmup {current.WarmupSteps}, total {current.TotalSteps?.ToString() ?? "none"}, cycles {current.Cycles}). Resume with the saved schedule.",
                "schedule");
    }

    private static void CheckOptions(TrainingStateFile.OptimizerJson saved, AdamWOptions current, string path)
    {
        (string Name, double Saved, double Now)[] values =
        [
            (nameof(AdamWOptions.LearningRate), saved.LearningRate, current.LearningRate),
            (nameof(AdamWOptions.Beta1), saved.Beta1, current.Beta1),
            (nameof(AdamWOptions.Beta2), saved.Beta2, current.Beta2),
            (nameof(AdamWOptions.Epsilon), saved.Epsilon, current.Epsilon),
            (nameof(AdamWOptions.WeightDecay), saved.WeightDecay, current.WeightDecay),
        ];
        var differ = values.Where(v => v.Saved != v.Now).Select(v => $"{v.Name} saved {v.Saved}, now {v.Now}").ToList();
        if (differ.Count > 0)
            throw new ArgumentException($"training state '{path}': the optimizer's hyper-parameters differ from the saved ones ({string.Join("; ", differ)}).", "optimizer");
    }

    private static void CheckGroups(TrainingStateFile.OptimizerJson saved, GroupedAdamW optimizer, string path)
    {
        var now = Groups(optimizer);
        var savedNames = saved.Groups.SelectMany(g => g.Parameters).ToHashSet(StringComparer.Ordinal);
        var nowNames = now.SelectMany(g => g.Parameters).ToHashSet(StringComparer.Ordinal);
        var missing = nowNames.Except(savedNames).ToList();
        var extra = savedNames.Except(nowNames).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new InvalidDataException(
                $"training state '{path}' does not match the optimizer's parameters: not in the file [{string.Join(", ", missing.Take(8))}]{(missing.Count > 8 ? $" and {missing.Count - 8} more" : "")}, " +
                $"only in the file [{string.Join(", ", extra.Take(8))}]{(extra.Count > 8 ? $" and {extra.Count - 8} more" : "")}.");
        bool sameGrouping = saved.Groups.Count == now.Count
            && saved.Groups.Zip(now).All(pair => pair.First.Parameters.SequenceEqual(pair.Second.Parameters, StringComparer.Ordinal));
        if (!sameGrouping)
            throw new InvalidDataException($"training state '{path}' groups the parameters differently (decay / no decay) from the optimizer; resume with the saved weight-decay rules.");
        for (int i = 0; i < saved.Groups.Count; i++)
        {
            var g = saved.Groups[i];
            if (!(double.IsFinite(g.LearningRate) && g.LearningRate >= 0))
                throw new InvalidDataException($"training state '{path}' has learning rate {g.LearningRate} for parameter group {i}; a learning rate is a finite number >= 0.");
            if (!(double.IsFinite(g.InitialLearningRate) && g.InitialLearningRate > 0))
                throw new InvalidDataException($"training state '{path}' has initial learning rate {g.InitialLearningRate} for parameter group {i}; it is a positive finite number (AdamW's learning rate).");
        }
        foreach (string name in nowNames)
        {
            if (!saved.Steps.TryGetValue(name, out long step))
                throw new InvalidDataException($"training state '{path}' has no optimizer step for parameter '{name}'.");
            if (step < 0)
                throw new InvalidDataException($"training state '{path}' has optimizer step {step} for parameter '{name}'; a step is a non-negative count of updates.");
        }
    }

    private static void CheckTensor(Dictionary<string, Tensor> tensors, string key, Parameter like, string path)
    {
        if (!tensors.TryGetValue(key, out Tensor? t))
            throw new InvalidDataException($"training state '{path}' has no tensor '{key}'.");
        if (!t.shape.SequenceEqual(like.shape) || t.dtype != like.dtype)
            throw new InvalidDataException(
                $"training state '{path}': '{key}' is {t.dtype} [{string.Join(", ", t.shape)}]; the parameter is {like.dtype} [{string.Join(", ", like.shape)}].");
    }
}
