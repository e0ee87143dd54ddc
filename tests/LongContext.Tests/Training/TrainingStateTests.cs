using LongContext.IO;
using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>
/// Save / resume: a run of 6 optimizer steps (dropout, 2 micro-batches of 2 rows per step, chunked loss, clipping,
/// cosine warmup schedule, weight decay on the decay group) equals, bit for bit on the CPU, a run that saves after 3
/// steps, is torn down, and resumes in a fresh model and optimizer.
/// </summary>
[Trait(Category.Name, Category.Training)]
[Collection(GlobalRngCollection.Name)]
public sealed class TrainingStateTests : IDisposable
{
    private const long Vocab = 17, Hidden = 8, N = 10;
    private const int MicroBatch = 2, Accumulation = 2, TotalSteps = 6;
    private readonly string folder = Path.Combine(Path.GetTempPath(), "lc-train-state-" + Guid.NewGuid().ToString("N"));
    private static readonly AdamWOptions Options = new() { LearningRate = 1e-2, WeightDecay = 0.1 };
    private static readonly LearningRateSchedule Schedule = LearningRateSchedule.Cosine(warmupSteps: 2, totalSteps: TotalSteps);

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    /// <summary>The loader: a fixed token table read in order, labels = ids; its cursor is the next row.</summary>
    private static TensorRowBatches Data()
    {
        var gen = new Random(5);
        long[] values = Enumerable.Range(0, 64 * (int)N).Select(_ => (long)gen.Next((int)Vocab)).ToArray();
        using Tensor rows = torch.tensor(values).reshape(64, N);
        return new TensorRowBatches(rows, batchSize: MicroBatch);
    }

    private static TinyLm Model()
    {
        torch.random.manual_seed(42);                                         // the "base checkpoint"
        var model = new TinyLm(Vocab, Hidden, dropout: 0.2);
        model.train();
        return model;
    }

    private static void Train(TinyLm model, GroupedAdamW optimizer, ITrainingBatches loader, long from, long to)
    {
        for (long step = from; step < to; step++)
        {
            var batches = Enumerable.Range(0, Accumulation).Select(_ => loader.Next()).ToList();
            GradientAccumulation.Run(batches, b => b.Labels,
                b => ChunkedCausalLmLoss.ComputeSum(model.Hidden(b.InputIds), model.HeadWeight, b.Labels, chunkSize: 4));
            GradientClipping.ClipByTotalNorm(optimizer.Parameters.Select(p => (Tensor)p.Parameter), 0.5);
            Schedule.Apply(optimizer.Optimizer, step);
            optimizer.Step();
            optimizer.ZeroGrad();
        }
    }

    private (TinyLm Model, GroupedAdamW Optimizer, Tensor NextRandom) Uninterrupted()
    {
        var model = Model();
        var optimizer = GroupedAdamW.ForModule(model, Options);
        torch.random.manual_seed(7);
        using var loader = Data();
        Train(model, optimizer, loader, 0, TotalSteps);
        return (model, optimizer, torch.rand(4));
    }

    private (TinyLm Model, GroupedAdamW Optimizer, Tensor NextRandom) Resumed(bool reseedAfterLoad = false)
    {
        string path = Path.Combine(folder, "state.safetensors");
        {
            using var model = Model();
            using var optimizer = GroupedAdamW.ForModule(model, Options);
            torch.random.manual_seed(7);
            using var loader = Data();
            Train(model, optimizer, loader, 0, 3);
            TrainingState.Save(path, optimizer, Schedule, 3, loader.Cursor);
        }
        torch.random.manual_seed(12345);                                      // anything may happen in between
        _ = torch.rand(100);
        var fresh = Model();
        using (torch.no_grad())
            foreach (var p in TrainableParameters.Select(fresh)) p.Parameter.zero_();   // the state must restore them
        var resumedOptimizer = GroupedAdamW.ForModule(fresh, Options);
        using var resumedLoader = Data();
        TrainingResumePoint point = TrainingState.Load(path, resumedOptimizer, Schedule, resumedLoader);
        if (reseedAfterLoad) torch.random.manual_seed(99);
        Assert.Equal(3, point.Step);
        Assert.Equal($"row={3 * Accumulation * MicroBatch}", point.DataCursor);
        Assert.Equal(point.DataCursor, resumedLoader.Cursor);                // Load sought the loader
        Train(fresh, resumedOptimizer, resumedLoader, point.Step, TotalSteps);
        return (fresh, resumedOptimizer, torch.rand(4));
    }

    [Fact]
    public void ResumedRun_EqualsUninterruptedRun_BitForBit()
    {
        var (a, optA, nextA) = Uninterrupted();
        var (b, optB, nextB) = Resumed();
        foreach (var (name, p) in a.named_parameters())
            TensorAssert.Equal(b.get_parameter(name)!, p, $"parameter {name}");
        var statesA = optA.States();
        var statesB = optB.States();
        for (int i = 0; i < statesA.Count; i++)
        {
            Assert.Equal(statesA[i].Parameter.Name, statesB[i].Parameter.Name);
            Assert.Equal(statesA[i].State.step, statesB[i].State.step);
            TensorAssert.Equal(statesB[i].State.exp_avg, statesA[i].State.exp_avg, $"exp_avg of {statesA[i].Parameter.Name}");
            TensorAssert.Equal(statesB[i].State.exp_avg_sq, statesA[i].State.exp_avg_sq, $"exp_avg_sq of {statesA[i].Parameter.Name}");
        }
        Assert.Equal(optA.Optimizer.ParamGroups.Select(g => g.LearningRate), optB.Optimizer.ParamGroups.Select(g => g.LearningRate));
        TensorAssert.Equal(nextB, nextA, "the random stream after training");
        a.Dispose(); b.Dispose(); optA.Dispose(); optB.Dispose();
    }

    [Fact]
    public void ResumeWithoutTheSavedRandomState_Differs_SoTheBitForBitTestHasTeeth()
    {
        var (a, optA, _) = Uninterrupted();
        var (b, optB, _) = Resumed(reseedAfterLoad: true);
        bool anyDiffers = a.named_parameters().Any(np => !b.get_parameter(np.name)!.eq(np.parameter).all().item<bool>());
        Assert.True(anyDiffers, "a resumed run with other dropout masks should end elsewhere");
        a.Dispose(); b.Dispose(); optA.Dispose(); optB.Dispose();
    }

    [Fact]
    public void Save_ReplacesTheFileAtomically_AndLeavesNoTemporaryFile()
    {
        string path = Path.Combine(folder, "nested", "state.safetensors");
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        TrainingState.Save(path, optimizer, Schedule, 0, "first");
        TrainingState.Save(path, optimizer, Schedule, 1, "second");
        Assert.Equal([Path.GetFileName(path)], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
        Assert.Equal("second", TrainingState.Load(path, optimizer, Schedule).DataCursor);
        var shapes = SafetensorsFile.ReadShapes(path);
        Assert.Contains("exp_avg.proj.weight", shapes.Keys);
        Assert.Contains("rng.cpu", shapes.Keys);
        Assert.DoesNotContain("parameter.frozen", shapes.Keys);               // frozen base weights are not saved
    }

    [Fact]
    public void Load_WithAnotherSchedule_IsRejectedNamingBoth()
    {
        string path = Path.Combine(folder, "state.safetensors");
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        TrainingState.Save(path, optimizer, Schedule, 2);
        var e = Assert.Throws<ArgumentException>(() => TrainingState.Load(path, optimizer, LearningRateSchedule.Cosine(2, 60)));
        Assert.Contains("total 6", e.Message);
        Assert.Contains("total 60", e.Message);
    }

    [Fact]
    public void Load_IntoOtherParameters_IsRejectedBeforeAnythingChanges()
    {
        string path = Path.Combine(folder, "state.safetensors");
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        TrainingState.Save(path, optimizer, Schedule, 2);

        using var other = Model();
        other.Frozen.requires_grad = true;                                    // one more trainable parameter
        using var otherOptimizer = GroupedAdamW.ForModule(other, Options);
        using Tensor before = other.HeadWeight.detach().clone();
        var e = Assert.Throws<InvalidDataException>(() => TrainingState.Load(path, otherOptimizer, Schedule));
        Assert.Contains("frozen", e.Message);
        TensorAssert.Equal(other.HeadWeight, before, "parameters after a rejected load");
    }

    /// <summary>What a load may change: the trainable parameters, AdamW's state and steps, the group lrs, the CPU generator.</summary>
    private static (Dictionary<string, Tensor> Tensors, long[] Steps, double[] LearningRates, Tensor Rng) Snapshot(TinyLm model, GroupedAdamW optimizer)
    {
        var tensors = TrainableParameters.Select(model).ToDictionary(p => "parameter." + p.Name, p => p.Parameter.detach().clone());
        foreach (var (p, state) in optimizer.States())
        {
            tensors["exp_avg." + p.Name] = state.exp_avg.clone();
            tensors["exp_avg_sq." + p.Name] = state.exp_avg_sq.clone();
        }
        return (tensors, optimizer.States().Select(s => s.State.step).ToArray(),
            optimizer.Optimizer.ParamGroups.Select(g => g.LearningRate).ToArray(), torch.random.get_rng_state());
    }

    private static void AssertUnchanged((Dictionary<string, Tensor> Tensors, long[] Steps, double[] LearningRates, Tensor Rng) before, TinyLm model, GroupedAdamW optimizer)
    {
        var after = Snapshot(model, optimizer);
        Assert.Equal(before.Tensors.Keys, after.Tensors.Keys);
        foreach (var (key, value) in before.Tensors) TensorAssert.Equal(after.Tensors[key], value, $"{key} after a rejected load");
        Assert.Equal(before.Steps, after.Steps);
        Assert.Equal(before.LearningRates, after.LearningRates);
        TensorAssert.Equal(after.Rng, before.Rng, "the CPU generator after a rejected load");
    }

    /// <summary>A state saved after 3 steps of training, so its tensors differ from a fresh model's and optimizer's.</summary>
    private string TrainedState(string? cursor)
    {
        string path = Path.Combine(folder, "state.safetensors");
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        using var loader = Data();
        Train(model, optimizer, loader, 0, 3);
        TrainingState.Save(path, optimizer, Schedule, 3, cursor ?? loader.Cursor);
        return path;
    }

    /// <summary>Rewrites a saved state with its metadata document and tensors edited.</summary>
    private static void Edit(string path, Func<string, string> document, Action<Dictionary<string, Tensor>>? tensors = null)
    {
        var metadata = SafetensorsFile.ReadMetadata(path).ToDictionary();
        var loaded = SafetensorsFile.Load(path);
        metadata["longcontext.training_state"] = document(metadata["longcontext.training_state"]);
        tensors?.Invoke(loaded);
        SafetensorsFile.Save(path, loaded, metadata);
    }

    [Theory]
    [InlineData("chunk=3")]                                                  // another kind of source's cursor
    [InlineData("row=-4")]
    public void Load_WithACursorTheBatchesReject_ThrowsNamingIt_AndChangesNothing(string cursor)
    {
        string path = TrainedState(cursor);
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        using var loader = Data();
        loader.Seek("row=5");
        var before = Snapshot(model, optimizer);

        var e = Assert.Throws<ArgumentException>(() => TrainingState.Load(path, optimizer, Schedule, loader));

        Assert.Equal("batches", e.ParamName);
        Assert.Contains($"'{path}'", e.Message);
        Assert.Contains($"data cursor '{cursor}'", e.Message);
        Assert.Contains(nameof(TensorRowBatches), e.Message);
        Assert.Contains("expected row=N", e.Message);                       // the source's own format
        Assert.Equal("cursor", Assert.IsType<ArgumentException>(e.InnerException).ParamName);
        Assert.Equal("row=5", loader.Cursor);
        AssertUnchanged(before, model, optimizer);
    }

    [Fact]
    public void Load_WithBatches_OfAStateWithoutACursor_LeavesThemWhereTheyAre()
    {
        string path = Path.Combine(folder, "state.safetensors");
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        TrainingState.Save(path, optimizer, Schedule, 2, dataCursor: null);
        using var loader = Data();
        loader.Seek("row=5");
        Assert.Null(TrainingState.Load(path, optimizer, Schedule, loader).DataCursor);
        Assert.Equal("row=5", loader.Cursor);
    }

    /// <summary>Saved states corrupted one way each, and a phrase the rejection must hold.</summary>
    public static TheoryData<string, string> CorruptStates => new()
    {
        { "negative step", "step -3" },
        { "negative parameter step", "optimizer step -1 for parameter 'proj.weight'" },
        { "generator state of the wrong size", "'rng.cpu' has shape [16]" },
        { "document without steps", "'optimizer.steps'" },
        { "negative group learning rate", "learning rate -0.5 for parameter group 0" },
        { "zero initial learning rate", "initial learning rate 0 for parameter group 1" },
    };

    /// <summary>The document with one field of one parameter group set (the field must be there to be replaced).</summary>
    private static string GroupEdited(string json, int group, string field, double value)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        var entry = node["optimizer"]!["groups"]![group]!.AsObject();
        Assert.True(entry.ContainsKey(field), $"group {group} has '{field}'");
        entry[field] = value;
        return node.ToJsonString();
    }

    private static void Corrupt(string path, string how)
    {
        switch (how)
        {
            case "negative step":
                Edit(path, json => json.Replace("\"step\":3,", "\"step\":-3,", StringComparison.Ordinal));
                break;
            case "negative parameter step":
                Edit(path, json => json.Replace("\"proj.weight\":3", "\"proj.weight\":-1", StringComparison.Ordinal));
                break;
            case "generator state of the wrong size":
                Edit(path, json => json, t => t["rng.cpu"] = torch.zeros(16, dtype: ScalarType.Byte));
                break;
            case "document without steps":
                Edit(path, json =>
                {
                    var node = System.Text.Json.Nodes.JsonNode.Parse(json)!;
                    node["optimizer"]!.AsObject().Remove("steps");
                    return node.ToJsonString();
                });
                break;
            case "negative group learning rate":
                Edit(path, json => GroupEdited(json, 0, "learningRate", -0.5));
                break;
            case "zero initial learning rate":
                Edit(path, json => GroupEdited(json, 1, "initialLearningRate", 0));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(how), how, "no such corruption");
        }
    }

    [Theory]
    [MemberData(nameof(CorruptStates))]
    public void Load_OfACorruptState_IsRejectedNamingTheFileAndTheValue_BeforeAnythingChanges(string how, string phrase)
    {
        string path = TrainedState(cursor: null);
        Corrupt(path, how);
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        using var loader = Data();
        var before = Snapshot(model, optimizer);

        var e = Assert.Throws<InvalidDataException>(() => TrainingState.Load(path, optimizer, Schedule, loader));

        Assert.Contains(phrase, e.Message);
        Assert.Contains(path, e.Message);
        Assert.Equal("row=0", loader.Cursor);
        AssertUnchanged(before, model, optimizer);
    }

    [Fact]
    public void Load_OfAnotherSafetensorsFile_IsRejected()
    {
        string path = Path.Combine(folder, "weights.safetensors");
        Directory.CreateDirectory(folder);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["w"] = torch.zeros(2) });
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        var e = Assert.Throws<InvalidDataException>(() => TrainingState.Load(path, optimizer, Schedule));
        Assert.Contains("is not a training state", e.Message);
    }

    [Fact]
    public void Load_OfAMissingFile_NamesIt()
    {
        using var model = Model();
        using var optimizer = GroupedAdamW.ForModule(model, Options);
        string path = Path.Combine(folder, "absent.safetensors");
        var e = Assert.Throws<FileNotFoundException>(() => TrainingState.Load(path, optimizer, Schedule));
        Assert.Contains(path, e.Message);
    }
}
