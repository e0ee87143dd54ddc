using LongContext.IO;
using LongContext.Llama;
using LongContext.Llama.Evaluation;
using LongContext.Llama.FineTuning;
using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.FineTuning;

/// <summary>
/// The reference trainer end to end on the fixture model (<c>models/tiny_llama</c>, vocabulary 128) prepared with the
/// LongLoRA recipe (PI to 1024, S2 in training, LoRA on q,k,v,o, embeddings and norms trainable, checkpointing) over
/// a small ASCII corpus, on the CPU: log, progress, periodic evaluation, state, adapter; a resumed run ends bit for bit
/// where an uninterrupted one does; bad row lengths fail clearly.
/// </summary>
[Trait(Category.Name, Category.Training)]
[Collection(GlobalRngCollection.Name)]
public sealed class LongLoraTrainerTests : IDisposable
{
    private const int RowLength = 64;
    private readonly string folder = Path.Combine(Path.GetTempPath(), "lc-trainer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private static string ModelFolder => Path.Combine(Fixtures.Folder("models"), "tiny_llama");

    private static LlamaForCausalLM PreparedModel()
    {
        torch.random.manual_seed(17);
        var model = LlamaCheckpoint.Load(ModelFolder, ScalarType.Float32);
        LongLora.Prepare(model, new LongContext.Training.LongLoraOptions { TargetContextLength = 1024 });
        return model;
    }

    /// <summary>Copies of the model's trainable parameters, by name.</summary>
    private static Dictionary<string, Tensor> Trainables(LlamaForCausalLM model)
        => TrainableParameters.Select(model).ToDictionary(p => p.Name, p => p.Parameter.detach().clone());

    /// <summary>ASCII codes of a repetitive text (the model's vocabulary is 128).</summary>
    private static long[] Corpus(int tokens)
    {
        string text = string.Concat(Enumerable.Range(0, 400).Select(i => $"{PasskeyPrompt.Filler} Line {i % 7}. "));
        return text.Take(tokens).Select(c => (long)c).ToArray();
    }

    private static TensorRowBatches Rows(int rows, int length = RowLength)
        => new(torch.tensor(Corpus(rows * length)).reshape(rows, length), batchSize: 2);

    /// <summary>Rows whose <see cref="ITrainingBatches.Seek"/> calls are recorded.</summary>
    private sealed class SeekRecordingBatches(TensorRowBatches inner) : ITrainingBatches, IDisposable
    {
        public List<string> Seeks { get; } = [];
        public string Cursor => inner.Cursor;
        public (Tensor InputIds, Tensor Labels) Next() => inner.Next();
        public void Seek(string cursor)
        {
            Seeks.Add(cursor);
            inner.Seek(cursor);
        }
        public void Dispose() => inner.Dispose();
    }

    /// <summary>Writes, where the trainer will look, a state of the prepared model at <paramref name="step"/> with <paramref name="cursor"/>.</summary>
    private static string SaveStateFor(LlamaForCausalLM model, LongLoraTrainerOptions options, long step, string? cursor)
    {
        string path = Path.Combine(Path.GetFullPath(options.OutputFolder), LongLoraTrainer.StateFile);
        model.train();
        using var optimizer = GroupedAdamW.ForModule(model, options.AdamW);
        TrainingState.Save(path, optimizer, options.EffectiveSchedule, step, cursor);
        return path;
    }

    private LongLoraTrainerOptions Options(string name, int totalSteps) => new()
    {
        TotalSteps = totalSteps,
        MicroBatchesPerStep = 2,
        AdamW = new AdamWOptions { LearningRate = 3e-3 },
        Schedule = LearningRateSchedule.Cosine(warmupSteps: 1, totalSteps: 6),
        LossChunkSize = 20,
        EvaluateEvery = 3,
        SaveStateEvery = 2,
        OutputFolder = Path.Combine(folder, name),
        BaseModelNameOrPath = "tiny_llama",
    };

    [Fact]
    public void Train_RunsEndToEnd_LogsEvaluatesAndSavesAPeftAdapter()
    {
        using var model = PreparedModel();
        using var rows = Rows(16);
        using var held = TokenSequence.FromArray(Corpus(16 * RowLength + 300).Skip(16 * RowLength).ToArray());
        var seen = new List<TrainerProgress>();

        TrainerResult result = new LongLoraTrainer(model, Options("run", 6)).Train(rows, held, seen.Add);

        Assert.Equal(6, seen.Count);
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), seen.Select(p => p.Step));
        Assert.True(seen[^1].Loss < seen[0].Loss, $"loss should fall on a repetitive corpus: {seen[0].Loss:F3} -> {seen[^1].Loss:F3}");
        Assert.All(seen, p => Assert.True(p.TokensPerSecond > 0 && p.GradNorm > 0));
        Assert.Equal([3L, 6L], seen.Where(p => p.EvaluationLoss is not null).Select(p => p.Step));
        Assert.Equal(0.0, seen[0].LearningRate);                            // HF: the first warmup update has lr 0
        Assert.Contains("6/6", seen[^1].ToString());

        string[] log = File.ReadAllLines(result.LogPath);
        Assert.Equal("step,loss,learning_rate,grad_norm,tokens_per_second,elapsed_s,eval_loss", log[0]);
        Assert.Equal(7, log.Length);
        Assert.True(File.Exists(result.StatePath));
        Assert.True(File.Exists(Path.Combine(result.AdapterFolder!, "adapter_config.json")));
        var keys = SafetensorsFile.ReadShapes(Path.Combine(result.AdapterFolder!, "adapter_model.safetensors")).Keys.ToList();
        Assert.Contains(keys, k => k.Contains("lora_A", StringComparison.Ordinal));
        Assert.Contains(keys, k => k.Contains("embed_tokens", StringComparison.Ordinal));   // trainable extras saved too
        Assert.False(model.training);
    }

    [Fact]
    public void Train_WithoutSaveAdapter_TrainsAModelWithoutLora_AndWritesNoAdapter()
    {
        torch.random.manual_seed(17);
        using var model = LlamaCheckpoint.Load(ModelFolder, ScalarType.Float32);   // every parameter trainable, no LoRA
        using var rows = Rows(16);
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var options = Options("plain", 3) with { EvaluateEvery = null, SaveAdapter = false, BaseModelNameOrPath = null };

        TrainerResult result = new LongLoraTrainer(model, options).Train(rows);

        Assert.Null(result.AdapterFolder);
        Assert.False(Directory.Exists(Path.Combine(options.OutputFolder, LongLoraTrainer.AdapterFolderName)));
        Assert.True(File.Exists(result.StatePath));
        var after = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach());
        Assert.All(before, kv => Assert.False(kv.Value.allclose(after[kv.Key], rtol: 0, atol: 0), $"{kv.Key} did not change"));
    }

    [Fact]
    public void ResumedRun_EndsBitForBitWhereTheUninterruptedRunEnds()
    {
        Dictionary<string, Tensor> straight;
        using (var model = PreparedModel())
        using (var rows = Rows(16))
        {
            new LongLoraTrainer(model, Options("straight", 6) with { EvaluateEvery = null }).Train(rows);
            straight = Trainables(model);
        }
        using (var model = PreparedModel())
        using (var rows = Rows(16))
            new LongLoraTrainer(model, Options("resumed", 4) with { EvaluateEvery = null }).Train(rows);   // stops after 4, state saved
        torch.random.manual_seed(999);
        using (var model = PreparedModel())
        using (var rows = new SeekRecordingBatches(Rows(16)))
        {
            TrainerResult second = new LongLoraTrainer(model, Options("resumed", 6) with { EvaluateEvery = null }).Train(rows);
            Assert.Equal(4, second.ResumedFrom);
            Assert.Equal(["row=16"], rows.Seeks);                               // 4 steps of 2 micro-batches of 2 rows
            Assert.Equal(2, second.Log.Count);
            Assert.Equal(7, File.ReadAllLines(second.LogPath).Length);           // the first session's rows kept
            foreach (var (name, value) in Trainables(model))
                TensorAssert.Equal(value, straight[name], $"trainable {name} after resuming");
        }
    }

    [Fact]
    public void CollectGarbageEveryStep_RunsAGen0CollectionAfterEachUpdate_AndLeavesTheNumbersAsTheyAre()
    {
        Dictionary<string, Tensor> without;
        using (var model = PreparedModel())
        using (var rows = Rows(16))
        {
            new LongLoraTrainer(model, Options("nogc", 4) with { EvaluateEvery = null, CollectGarbageEveryStep = false }).Train(rows);
            without = Trainables(model);
        }
        using (var model = PreparedModel())
        using (var rows = Rows(16))
        {
            int before = GC.CollectionCount(0);
            new LongLoraTrainer(model, Options("gc", 4) with { EvaluateEvery = null }).Train(rows);   // the default: on
            Assert.True(GC.CollectionCount(0) - before >= 4, $"expected at least 4 gen-0 collections in 4 updates; got {GC.CollectionCount(0) - before}");
            foreach (var (name, value) in Trainables(model))
                TensorAssert.Equal(value, without[name], $"trainable {name} with and without the collections");
        }
    }

    [Theory]
    [InlineData("chunk=3")]                                                    // another kind of source's cursor
    [InlineData("row=-4")]
    [InlineData("")]
    public void Resume_FromACursorTheBatchesReject_IsAnErrorNamingTheState_TheCursor_AndTheExpectedFormat(string cursor)
    {
        using var model = PreparedModel();
        var options = Options("foreign", 4) with { EvaluateEvery = null };
        string statePath = SaveStateFor(model, options, step: 2, cursor);
        using (torch.no_grad())
            foreach (var p in TrainableParameters.Select(model)) p.Parameter.add_(0.25);   // now unlike the saved values
        var before = TrainableParameters.Select(model).ToDictionary(p => p.Name, p => p.Parameter.detach().clone());
        using var rows = Rows(16);

        var e = Assert.Throws<ArgumentException>(() => new LongLoraTrainer(model, options).Train(rows));

        Assert.Equal("batches", e.ParamName);
        Assert.Contains($"'{statePath}'", e.Message);
        Assert.Contains($"data cursor '{cursor}'", e.Message);
        Assert.Contains(nameof(TensorRowBatches), e.Message);
        Assert.Contains("expected row=N", e.Message);                         // the source's format, from its own message
        Assert.Equal("cursor", Assert.IsType<ArgumentException>(e.InnerException).ParamName);
        Assert.Equal("row=0", rows.Cursor);                                   // not moved, nothing trained or logged
        Assert.False(File.Exists(Path.Combine(options.OutputFolder, LongLoraTrainer.LogFile)));
        foreach (var p in TrainableParameters.Select(model))                  // nor loaded: checked before anything changed
            TensorAssert.Equal(p.Parameter, before[p.Name], $"trainable {p.Name} after the rejected resume");
    }

    [Fact]
    public void Resume_FromAStateWithoutACursor_LeavesTheBatchesWhereTheyAre()
    {
        using var model = PreparedModel();
        var options = Options("no-cursor", 3) with { EvaluateEvery = null };
        SaveStateFor(model, options, step: 2, cursor: null);
        using var rows = new SeekRecordingBatches(Rows(16));

        TrainerResult result = new LongLoraTrainer(model, options).Train(rows);

        Assert.Equal(2, result.ResumedFrom);
        Assert.Empty(rows.Seeks);
        Assert.Equal("row=4", rows.Cursor);                                   // one step of 2 micro-batches of 2 rows, from row 0
        using var reread = GroupedAdamW.ForModule(model, options.AdamW);
        Assert.Equal("row=4", TrainingState.Load(result.StatePath, reread, options.EffectiveSchedule).DataCursor);   // saved from there on
    }

    [Fact]
    public void RowLengthNotFittingS2_IsAnErrorNamingIt()
    {
        using var model = PreparedModel();
        using var rows = Rows(4, length: 36);                                 // G = 9: odd
        var e = Assert.Throws<ArgumentException>(() => new LongLoraTrainer(model, Options("bad", 1) with { EvaluateEvery = null }).Train(rows));
        Assert.Contains("36 tokens", e.Message);
        Assert.Contains("S2", e.Message);
    }

    [Fact]
    public void RowsLongerThanTheContext_AreAnError()
    {
        using var model = PreparedModel();
        // The fixture: 1024 positions with linear factor 4, a 4096-token model under LongLoRA's convention.
        using var rows = new TensorRowBatches(torch.zeros([1, 8192], ScalarType.Int64), batchSize: 1);
        var e = Assert.Throws<ArgumentException>(() => new LongLoraTrainer(model, Options("long", 1) with { EvaluateEvery = null }).Train(rows));
        Assert.Contains("8192 tokens exceed the model's context of 4096", e.Message);
    }

    [Fact]
    public void RowsWithinThePiExtendedContext_Train_AndRowsBeyondItAreAnError()
    {
        torch.random.manual_seed(17);
        using var model = LlamaCheckpoint.Load(ModelFolder, ScalarType.Float32);
        model.UpdateRope(model.Config with { MaxPositionEmbeddings = 32, Rope = new LongContext.Rope.RopeParameters { Theta = 10000 } });   // unscaled, 32 positions
        LongLora.Prepare(model, new LongContext.Training.LongLoraOptions { TargetContextLength = 128 });
        Assert.Equal(32, model.Config.MaxPositionEmbeddings);                     // LongLoRA leaves it; the linear factor is 4
        Assert.Equal(128, LongLora.ContextLength(model.Config));

        using var rows = Rows(4, 128);
        var result = new LongLoraTrainer(model, Options("pi", 1) with { EvaluateEvery = null }).Train(rows);
        Assert.Equal(1, result.Steps);

        using var longer = new TensorRowBatches(torch.zeros([2, 256], ScalarType.Int64), batchSize: 2);
        var e = Assert.Throws<ArgumentException>(() => new LongLoraTrainer(model, Options("pi-long", 1) with { EvaluateEvery = null }).Train(longer));
        Assert.Contains("256 tokens exceed the model's context of 128", e.Message);
    }

    [Fact]
    public void EvaluationWithoutTokens_IsAnError()
    {
        using var model = PreparedModel();
        using var rows = Rows(4);
        var e = Assert.Throws<ArgumentException>(() => new LongLoraTrainer(model, Options("noeval", 1)).Train(rows));
        Assert.Equal("evaluationTokens", e.ParamName);
    }

    public static TheoryData<string, Func<LongLoraTrainerOptions, LongLoraTrainerOptions>, string> UnusedSettings => new()
    {
        { "an evaluation without EvaluateEvery", o => o with { EvaluateEvery = null, Evaluation = new PerplexityOptions { Lengths = [32], Protocols = [PerplexityProtocol.Strided] } },
            "EvaluateEvery is null" },
        { "an evaluation of two protocols", o => o with { Evaluation = new PerplexityOptions { Lengths = [32] } }, "protocols [LongLora, Strided] at lengths [32]" },
        { "an evaluation at two lengths", o => o with { Evaluation = new PerplexityOptions { Lengths = [32, 64], Protocols = [PerplexityProtocol.Strided] } },
            "at lengths [32, 64]" },
        { "a stride the evaluation's protocol does not use", o => o with { Evaluation = new PerplexityOptions { Lengths = [32], Protocols = [PerplexityProtocol.LongLora], Stride = 16 } },
            "Stride 16" },
        { "a base model name without an adapter", o => o with { SaveAdapter = false }, "BaseModelNameOrPath 'tiny_llama'" },
        { "decay rules without weight decay", o => o with { AdamW = o.AdamW with { DecayRules = new WeightDecayRules { DecayNorms = true } } }, "DecayRules (DecayNorms)" },
    };

    [Theory]
    [MemberData(nameof(UnusedSettings))]
    public void ASettingTheOthersLeaveUnused_IsRefusedByTheConstructor(string name, Func<LongLoraTrainerOptions, LongLoraTrainerOptions> change, string fragment)
    {
        using var model = PreparedModel();
        var e = Assert.Throws<ArgumentException>(() => new LongLoraTrainer(model, change(Options(name.Replace(' ', '-'), 1))));
        Assert.Equal("options", e.ParamName);
        Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal), $"{name}: {e.Message}");
        Assert.False(Directory.Exists(folder), "nothing is written");
    }

    [Fact]
    public void EvaluationTokensWithoutEvaluateEvery_AreRefused()
    {
        using var model = PreparedModel();
        using var rows = Rows(4);
        using var held = TokenSequence.FromArray(Corpus(300));
        var e = Assert.Throws<ArgumentException>(() => new LongLoraTrainer(model, Options("unread", 1) with { EvaluateEvery = null }).Train(rows, held));
        Assert.Equal("evaluationTokens", e.ParamName);
        Assert.Contains("EvaluateEvery is null", e.Message);
    }

    [Fact]
    public void AnEvaluationLongerThanItsTokens_IsRefusedBeforeTheFirstStep()
    {
        using var model = PreparedModel();
        using var rows = Rows(4);
        using var held = TokenSequence.FromArray(Corpus(40));
        var options = Options("short", 3) with { Evaluation = new PerplexityOptions { Lengths = [64], Protocols = [PerplexityProtocol.LongLora] } };
        var progress = new List<TrainerProgress>();
        Assert.Throws<ArgumentException>(() => new LongLoraTrainer(model, options).Train(rows, held, progress.Add));
        Assert.Empty(progress);
        Assert.False(File.Exists(Path.Combine(options.OutputFolder, LongLoraTrainer.LogFile)), "no step ran");
    }

    [Fact]
    public void Options_RejectBadValuesNamingThem()
    {
        Assert.Equal("TotalSteps", Assert.Throws<ArgumentOutOfRangeException>(() => new LongLoraTrainerOptions { TotalSteps = 0 }).ParamName);
        Assert.Equal("MicroBatchesPerStep", Assert.Throws<ArgumentOutOfRangeException>(() => new LongLoraTrainerOptions { MicroBatchesPerStep = 0 }).ParamName);
        Assert.Equal("MaxGradNorm", Assert.Throws<ArgumentOutOfRangeException>(() => new LongLoraTrainerOptions { MaxGradNorm = -1 }).ParamName);
        Assert.Equal(LearningRateSchedule.ConstantWithWarmup(5, 5), new LongLoraTrainerOptions { TotalSteps = 5 }.EffectiveSchedule);
    }
}
