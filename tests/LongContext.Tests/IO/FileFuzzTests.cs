using LongContext.IO;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LongContext.Tests.IO;

/// <summary>
/// Seeded fuzzing of the files a user downloads: hundreds of mutations (bit flips, truncations, inserted bytes,
/// changed header lengths, offsets, dtypes and shapes, values of the wrong type, huge numbers) of valid safetensors
/// files, peft adapter configs and HF model configs. Every load either succeeds or throws one of the library's
/// documented exception types for bad files (<see cref="InvalidDataException"/>, <see cref="NotSupportedException"/>);
/// never a native error, a crash, another exception type, or tensor memory larger than the file. A failure prints
/// the seed, the case and the mutation, so a case can be replayed. <c>LONGCONTEXT_FUZZ_SCALE=N</c> runs N times as many cases.
/// </summary>
[Trait(Category.Name, Category.Build)]
public sealed class FileFuzzTests(ITestOutputHelper output)
{
    private const int Seed = 20240917;
    /// <summary>Multiplies the case counts (environment variable; default 1, as CI runs it).</summary>
    private const string ScaleVariable = "LONGCONTEXT_FUZZ_SCALE";

    private static int Scale => int.TryParse(Environment.GetEnvironmentVariable(ScaleVariable), out int s) && s > 0 ? s : 1;
    private static int SafetensorsCases => 600 * Scale;
    private static int ConfigCases => 300 * Scale;

    private static readonly LlamaConfig Tiny = new()
    {
        VocabSize = 64, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2,
        NumKeyValueHeads = 1, HeadDim = 8, MaxPositionEmbeddings = 64,
    };

    /// <summary>adapter_config.json fields that change the math, retyped more often than the others.</summary>
    private static readonly string[] AdapterFields =
        ["r", "lora_alpha", "lora_dropout", "target_modules", "bias", "modules_to_save", "init_lora_weights", "use_rslora", "peft_type", "rank_pattern", "use_dora", "layers_to_transform"];

    /// <summary>config.json fields that change the math or the shapes.</summary>
    private static readonly string[] ModelFields =
    [
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
        "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters", "tie_word_embeddings", "architectures",
        "model_type", "hidden_act", "attention_bias", "mlp_bias", "attention_dropout", "sliding_window", "partial_rotary_factor",
    ];

    private static bool Documented(Exception e) => e is InvalidDataException or NotSupportedException;

    /// <summary>Runs <paramref name="cases"/> seeded loads; returns the outcome counts and asserts that every failure is documented.</summary>
    private void Run(string what, int cases, Func<int, Random, (string What, Action Load)> mutate)
        => Run(what, cases, mutate, Documented);

    /// <summary>As above, with the reader's own documented exceptions.</summary>
    private void Run(string what, int cases, Func<int, Random, (string What, Action Load)> mutate, Func<Exception, bool> documented)
    {
        var outcomes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var bad = new List<string>();
        for (int i = 0; i < cases; i++)
        {
            var rng = new Random(Seed + i);
            var (mutation, load) = mutate(i, rng);
            string outcome;
            try
            {
                load();
                outcome = "loaded";
            }
            catch (Exception e) when (documented(e))
            {
                outcome = e.GetType().Name;
            }
            catch (Exception e)
            {
                outcome = "UNDOCUMENTED " + e.GetType().Name;
                bad.Add($"case {i} (seed {Seed + i}): {mutation}: {e.GetType().FullName}: {e.Message}");
            }
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        output.WriteLine($"{what}: {cases} cases: {string.Join(", ", outcomes.Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.True(bad.Count == 0, $"{bad.Count} of {cases} {what} mutations ended in an undocumented exception:\n{string.Join("\n", bad.Take(15))}");
        Assert.True(outcomes.Where(kv => kv.Key != "loaded").Sum(kv => kv.Value) > cases / 4, $"{what}: too few mutations were rejected; the mutator is not reaching the checks.");
    }

    /// <summary>Valid safetensors files to mutate: one written here with every supported dtype, and Python-written fixtures.</summary>
    private static List<(string Name, byte[] Bytes)> SafetensorsSeeds()
    {
        using var folder = new TempFolder();
        string path = folder.File("seed.safetensors");
        using (var scope = NewDisposeScope())
        {
            var gen = new Generator(5);
            SafetensorsFile.Save(path, new Dictionary<string, Tensor>
            {
                ["w.f32"] = randn(4, 6, generator: gen), ["w.bf16"] = randn(8, generator: gen).to(bfloat16),
                ["w.f16"] = randn(3, 3, generator: gen).to(float16), ["ids.i64"] = arange(5, dtype: int64),
                ["codes.u8"] = randint(0, 255, [16], dtype: ScalarType.Byte, generator: gen), ["mask.bool"] = tensor(new[] { true, false }),
                ["scalar.f64"] = tensor(2.5), ["empty.i32"] = zeros(0, 4, dtype: int32), ["q.i8"] = tensor(new sbyte[] { -3, 4 }),
            });
        }
        var seeds = new List<(string, byte[])> { ("written here", File.ReadAllBytes(path)) };
        foreach (string rel in new[] { "models/tiny_llama/model.safetensors", "models/tiny_llama_lora/adapter_model.safetensors", "quant/nf4_fp4_blockwise.safetensors" })
        {
            string file = Path.Combine(Fixtures.Root, rel);
            if (File.Exists(file)) seeds.Add((rel, File.ReadAllBytes(file)));
        }
        return seeds;
    }

    [Fact]
    public void Safetensors_MutatedFiles_LoadOrThrowDocumentedExceptions()
    {
        var seeds = SafetensorsSeeds();
        using var folder = new TempFolder();
        string path = folder.File("fuzz.safetensors");
        double worstManagedRatio = 0;
        Run("safetensors", SafetensorsCases, (i, rng) =>
        {
            var (seedName, seed) = seeds[i % seeds.Count];
            long headerEnd = 8 + BitConverter.ToInt64(seed, 0);
            var (bytes, what) = rng.Next(3) switch
            {
                0 => FileMutator.Bytes(seed, rng, headerEnd),
                1 => FileMutator.SafetensorsHeader(seed, rng),
                _ => FileMutator.SafetensorsHugeNumber(seed, rng),
            };
            what = $"{seedName}: {what}";
            return (what, () => worstManagedRatio = Math.Max(worstManagedRatio, LoadChecked(path, bytes, what)));
        });
        output.WriteLine($"largest managed allocation during a successful load: {worstManagedRatio:F1} x the file's size");
    }

    /// <summary>Loads a mutated file; when it loads, checks that its tensors and the managed memory spent fit the file. Returns managed bytes / file bytes.</summary>
    private static double LoadChecked(string path, byte[] bytes, string what)
    {
        File.WriteAllBytes(path, bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var tensors = SafetensorsFile.Load(path);
        long managed = GC.GetAllocatedBytesForCurrentThread() - before;
        try
        {
            long tensorBytes = tensors.Values.Sum(t => t.numel() * t.ElementSize);
            Assert.True(tensorBytes <= bytes.Length, $"{what}: {tensorBytes} bytes of tensors from a file of {bytes.Length}");
            Assert.True(managed <= 64L * bytes.Length + (4 << 20), $"{what}: {managed} managed bytes allocated for a file of {bytes.Length}");
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        return (double)managed / Math.Max(1, bytes.Length);
    }

    /// <summary>A peft adapter folder for <see cref="Tiny"/> written by the library (LoRA r=4 on q and v, embed trained in full).</summary>
    private static void WriteAdapter(string folder)
    {
        random.manual_seed(3);
        using var model = new LlamaForCausalLM(Tiny);
        LoraInjector.Inject(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"], ModulesToSave = ["embed_tokens"] });
        PeftAdapter.Save(model, folder, "tiny");
    }

    [Fact]
    public void AdapterConfig_MutatedFiles_LoadOrThrowDocumentedExceptions()
    {
        using var folder = new TempFolder();
        WriteAdapter(folder.Path);
        string configPath = folder.File(PeftAdapterConfigJson.FileName);
        string original = File.ReadAllText(configPath);
        Run("adapter_config.json", ConfigCases, (i, rng) =>
        {
            string what = MutateJsonText(original, rng, AdapterFields, out byte[] bytes);
            return (what, () =>
            {
                File.WriteAllBytes(configPath, bytes);
                using var model = new LlamaForCausalLM(Tiny);
                PeftAdapter.Load(model, folder.Path);
            });
        });
    }

    [Fact]
    public void ModelConfig_MutatedFiles_LoadOrThrowDocumentedExceptions()
    {
        using var folder = new TempFolder();
        random.manual_seed(4);
        using (var model = new LlamaForCausalLM(Tiny)) LlamaCheckpoint.Save(model, folder.Path);
        string configPath = folder.File("config.json");
        var seeds = new List<string> { File.ReadAllText(configPath) };
        string fixture = Path.Combine(Fixtures.Folder("models"), "tiny_llama", "config.json");
        if (File.Exists(fixture)) seeds.Add(File.ReadAllText(fixture)); // a transformers-written config (its shapes differ: rejected by shape, or by field)
        Run("config.json", ConfigCases, (i, rng) =>
        {
            string what = MutateJsonText(seeds[i % seeds.Count], rng, ModelFields, out byte[] bytes);
            return (what, () =>
            {
                File.WriteAllBytes(configPath, bytes);
                using var model = LlamaCheckpoint.Load(folder.Path);
            });
        });
    }

    /// <summary>
    /// Sharded checkpoints: <c>model.safetensors.index.json</c> mutated (weight_map entries retyped, removed, added,
    /// pointed at other or absent shards, out of the folder); a load succeeds or throws the documented exceptions.
    /// </summary>
    [Fact]
    public void CheckpointIndex_MutatedFiles_LoadOrThrowDocumentedExceptions()
    {
        using var folder = new TempFolder();
        random.manual_seed(8);
        using (var model = new LlamaForCausalLM(Tiny)) LlamaCheckpoint.Save(model, folder.Path, maxShardBytes: 4096);
        string indexPath = folder.File(LlamaCheckpoint.IndexFile);
        string original = File.ReadAllText(indexPath);
        var shards = Directory.GetFiles(folder.Path, "model-*.safetensors").Select(Path.GetFileName).ToList();
        Assert.True(shards.Count > 1, "the seed checkpoint is sharded");
        string[] targets = [.. shards!, "absent.safetensors", "../model.safetensors", "/etc/passwd", "", "sub/x.safetensors", "config.json"];
        Run("model.safetensors.index.json", ConfigCases, (i, rng) =>
        {
            string what;
            byte[] bytes;
            if (rng.Next(2) == 0)
            {
                var root = System.Text.Json.Nodes.JsonNode.Parse(original)!.AsObject();
                var map = root["weight_map"]!.AsObject();
                var keys = map.Select(kv => kv.Key).ToList();
                string key = keys[rng.Next(keys.Count)];
                switch (rng.Next(4))
                {
                    case 0:
                        string target = targets[rng.Next(targets.Length)];
                        map[key] = target;
                        what = $"weight_map['{key}'] = '{target}'";
                        break;
                    case 1:
                        map.Remove(key);
                        what = $"weight_map lost '{key}'";
                        break;
                    case 2:
                        map[$"model.fuzz_{rng.Next(100)}.weight"] = shards[rng.Next(shards.Count)];
                        what = "weight_map gained a tensor no shard holds";
                        break;
                    default:
                        map[key] = System.Text.Json.Nodes.JsonNode.Parse(rng.Next(3) switch { 0 => "null", 1 => "7", _ => "[\"a\"]" });
                        what = $"weight_map['{key}'] retyped";
                        break;
                }
                bytes = FileMutator.Utf8(root.ToJsonString());
            }
            else what = MutateJsonText(original, rng, ["weight_map", "metadata"], out bytes);
            return (what, () =>
            {
                File.WriteAllBytes(indexPath, bytes);
                using var model = LlamaCheckpoint.Load(folder.Path);
            });
        });
    }

    /// <summary>The project's own binary formats, their headers (where the counts are) mutated more often than the rest.</summary>
    private static (byte[] Bytes, string What) MutateBinary(byte[] seed, Random rng, int headerBytes)
    {
        if (rng.Next(3) > 0) return FileMutator.Bytes(seed, rng, headerBytes + 64);
        // A field of the header or the first values after it set to a boundary value, the size unchanged.
        byte[] b = (byte[])seed.Clone();
        int at = 8 + 4 * rng.Next((headerBytes - 8) / 4 + 8);
        uint[] values = [0, 1, 2, uint.MaxValue, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 3];
        uint v = values[rng.Next(values.Length)];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(Math.Min(at, b.Length - 4)), v);
        return (b, $"uint32 at byte {Math.Min(at, b.Length - 4)} -> {v}");
    }

    /// <summary>
    /// Packed rows files: every mutation either opens, and then every row and every batch reads, or fails with
    /// <see cref="InvalidDataException"/> naming the file (a row's token count outside 1..L included).
    /// </summary>
    [Fact]
    public void PackedRows_MutatedFiles_ReadOrThrowDocumentedExceptions()
    {
        using var folder = new TempFolder();
        string seedPath = folder.File("seed.lcrows");
        var gen = new Random(9);
        var rows = Enumerable.Range(0, 5).Select(r => new LongContext.Text.Corpus.PackedRow(
            Enumerable.Range(0, 6).Select(_ => gen.Next(100)).ToArray(), 1 + r)).ToList();
        LongContext.Text.Corpus.PackedRows.Write(seedPath, rows, 6, "fuzz seed");
        byte[] seed = File.ReadAllBytes(seedPath);
        string path = folder.File("fuzz.lcrows");
        Run("rows file", ConfigCases, (i, rng) =>
        {
            var (bytes, what) = MutateBinary(seed, rng, headerBytes: 20);
            return (what, () =>
            {
                File.WriteAllBytes(path, bytes);
                var opened = LongContext.Text.Corpus.PackedRows.Open(path);
                for (int r = 0; r < opened.Count; r++)
                    Assert.True(opened.ReadRow(r).InputIds.All(id => id >= 0), $"{what}: a negative id was read");
                foreach (var batch in opened.Batches(2, seed: 3)) batch.Dispose();
            });
        }, e => e is InvalidDataException d && d.Message.Contains(path, StringComparison.Ordinal));
    }

    /// <summary>Tokenized corpus files (the token cache): open and stream every document, or <see cref="InvalidDataException"/> naming the file.</summary>
    [Fact]
    public void TokenizedCorpus_MutatedFiles_ReadOrThrowDocumentedExceptions()
    {
        using var folder = new TempFolder();
        string seedPath = folder.File("seed.lctoks");
        var gen = new Random(10);
        LongContext.Text.Corpus.TokenizedCorpus.Write(seedPath,
            Enumerable.Range(0, 4).Select(d => Enumerable.Range(0, 3 + d).Select(_ => gen.Next(5000)).ToArray()).ToList());
        byte[] seed = File.ReadAllBytes(seedPath);
        string path = folder.File("fuzz.lctoks");
        Run("tokenized corpus", ConfigCases, (i, rng) =>
        {
            var (bytes, what) = MutateBinary(seed, rng, headerBytes: 24);
            return (what, () =>
            {
                File.WriteAllBytes(path, bytes);
                var opened = LongContext.Text.Corpus.TokenizedCorpus.Open(path);
                foreach (int[] document in opened.Documents())
                    Assert.True(document.All(id => id >= 0), $"{what}: a negative id was read");
            });
        }, e => e is InvalidDataException d && d.Message.Contains(path, StringComparison.Ordinal));
    }

    /// <summary>
    /// Training states: the safetensors container and the JSON document in its metadata mutated; a load resumes or
    /// is refused with the documented exceptions (<see cref="InvalidDataException"/> for the file, <see cref="ArgumentException"/>
    /// with parameter <c>schedule</c> or <c>optimizer</c> for settings that differ from the run's).
    /// </summary>
    [Fact]
    public void TrainingState_MutatedFiles_LoadOrThrowDocumentedExceptions()
    {
        using var folder = new TempFolder();
        string seedPath = folder.File("seed.safetensors");
        var options = new LongContext.Training.AdamWOptions { LearningRate = 1e-2, WeightDecay = 0.1 };
        var schedule = LongContext.Training.LearningRateSchedule.Cosine(warmupSteps: 2, totalSteps: 6);
        random.manual_seed(6);
        using (var model = new LongContext.Tests.Training.TinyLm(11, 4, dropout: 0))
        using (var optimizer = LongContext.Training.GroupedAdamW.ForModule(model, options))
            LongContext.Training.TrainingState.Save(seedPath, optimizer, schedule, 3, "row=4");
        byte[] seed = File.ReadAllBytes(seedPath);
        string document = SafetensorsFile.ReadMetadata(seedPath)["longcontext.training_state"];
        string[] focus = ["version", "step", "dataCursor", "schedule", "optimizer", "cudaSeed"];
        string path = folder.File("fuzz.safetensors");
        Run("training state", ConfigCases, (i, rng) =>
        {
            byte[] bytes;
            string what;
            if (rng.Next(2) == 0)
            {
                (bytes, what) = rng.Next(2) == 0 ? FileMutator.SafetensorsHeader(seed, rng) : FileMutator.Bytes(seed, rng, 8 + BitConverter.ToInt64(seed, 0));
            }
            else
            {
                what = "document: " + MutateJsonText(document, rng, focus, out byte[] text);
                File.WriteAllBytes(path, seed);
                var metadata = SafetensorsFile.ReadMetadata(path).ToDictionary();
                metadata["longcontext.training_state"] = System.Text.Encoding.UTF8.GetString(text);
                var tensors = SafetensorsFile.Load(path);
                SafetensorsFile.Save(path, tensors, metadata);
                foreach (var t in tensors.Values) t.Dispose();
                bytes = File.ReadAllBytes(path);
            }
            return (what, () =>
            {
                File.WriteAllBytes(path, bytes);
                random.manual_seed(6);
                using var model = new LongContext.Tests.Training.TinyLm(11, 4, dropout: 0);
                using var optimizer = LongContext.Training.GroupedAdamW.ForModule(model, options);
                using var batches = new LongContext.Training.TensorRowBatches(arange(40).reshape(8, 5) % 11, batchSize: 2);
                LongContext.Training.TrainingState.Load(path, optimizer, schedule, batches);
            });
        }, e => e is InvalidDataException or NotSupportedException
            || e.GetType() == typeof(ArgumentException) && ((ArgumentException)e).ParamName is "schedule" or "optimizer" or "batches");
    }

    private static string MutateJsonText(string original, Random rng, IReadOnlyList<string> focus, out byte[] bytes)
    {
        switch (rng.Next(4))
        {
            case 0:
            {
                var (b, what) = FileMutator.Bytes(FileMutator.Utf8(original), rng, original.Length);
                bytes = b;
                return what;
            }
            case 1:
            {
                var (text, what) = FileMutator.HugeNumber(original, rng);
                bytes = FileMutator.Utf8(text);
                return what;
            }
            default:
            {
                var (text, what) = FileMutator.JsonField(original, rng, focus);
                if (rng.Next(3) == 0) (text, what) = (FileMutator.JsonField(text, rng, focus).Text, what + " and another field");
                bytes = FileMutator.Utf8(text);
                return what;
            }
        }
    }
}
