using System.Text.Json;
using System.Text.Json.Nodes;
using LongContext.Llama;
using LongContext.Rope;

namespace LongContext.Demo.Experiment;

/// <summary>
/// Settings of the base model's pretraining (the <c>pretrain</c> command); all of them go into its manifest. Each
/// value is checked when it is set (<see cref="ArgumentOutOfRangeException"/> naming the property), so the command
/// line and a manifest read back go through the same checks.
/// </summary>
public sealed record PretrainSettings
{
    private readonly int _seed = 1, _context = 128, _steps = 2000, _batch = 16, _hidden = 128, _layers = 3, _heads = 4, _intermediate = 384;
    private readonly double _learningRate = 2e-3, _weightDecay = 0.1, _passkeyFraction = 0.25, _ropeTheta = 10000;

    /// <summary>Seed of the initialization and the data order (non-negative).</summary>
    public int Seed { get => _seed; init => _seed = SettingChecks.AtLeast(value, 0); }
    /// <summary>
    /// Pretraining context L, in [128, 4096]: the passkey rows and the passkey test at L need room for LongLoRA's prompt,
    /// whose fixed sentences take about 110 tokens of the shipped tokenizer.
    /// </summary>
    public int Context { get => _context; init => _context = value is >= 128 and <= 4096 ? value : throw SettingChecks.Bad(value, "in [128, 4096] (room for the passkey prompt, about 110 tokens)"); }
    /// <summary>Optimizer updates (at least 1).</summary>
    public int Steps { get => _steps; init => _steps = SettingChecks.AtLeast(value, 1); }
    /// <summary>Rows per update (at least 1).</summary>
    public int Batch { get => _batch; init => _batch = SettingChecks.AtLeast(value, 1); }
    /// <summary>Peak learning rate (cosine schedule, 5 % warmup); positive.</summary>
    public double LearningRate { get => _learningRate; init => _learningRate = SettingChecks.Positive(value); }
    /// <summary>AdamW weight decay (not on norms); non-negative.</summary>
    public double WeightDecay { get => _weightDecay; init => _weightDecay = double.IsFinite(value) && value >= 0 ? value : throw SettingChecks.Bad(value, "a non-negative number"); }
    /// <summary>Share of passkey rows in the data, in [0, 1).</summary>
    public double PasskeyFraction { get => _passkeyFraction; init => _passkeyFraction = SettingChecks.Fraction(value); }
    /// <summary>Hidden size: at least 1, a multiple of <see cref="Heads"/> (checked by <see cref="Validated"/>).</summary>
    public int Hidden { get => _hidden; init => _hidden = SettingChecks.AtLeast(value, 1); }
    /// <summary>Decoder layers.</summary>
    public int Layers { get => _layers; init => _layers = SettingChecks.AtLeast(value, 1); }
    /// <summary>Attention heads: at least 1, a divisor of <see cref="Hidden"/> (checked by <see cref="Validated"/>); the head dimension is Hidden / Heads.</summary>
    public int Heads { get => _heads; init => _heads = SettingChecks.AtLeast(value, 1); }
    /// <summary>MLP size.</summary>
    public int Intermediate { get => _intermediate; init => _intermediate = SettingChecks.AtLeast(value, 1); }
    /// <summary>
    /// RoPE base, a finite number above 1. Default 10,000, Llama-2's: with it the base learns passkey retrieval at L,
    /// which it did not with the first shipped base's 500 (README, "What the program concluded").
    /// </summary>
    public double RopeTheta { get => _ropeTheta; init => _ropeTheta = double.IsFinite(value) && value > 1 ? value : throw SettingChecks.Bad(value, "a finite number above 1"); }

    /// <summary>These settings after the checks that relate two of them (each value alone is checked when it is set).</summary>
    /// <exception cref="SettingOutOfRangeException"><see cref="Heads"/> does not divide <see cref="Hidden"/> into heads of an even size (RoPE turns pairs),
    /// or the training tokens (<see cref="Steps"/> x <see cref="Batch"/> rows of <see cref="Context"/>) do not fit one array.</exception>
    public PretrainSettings Validated()
    {
        if (Hidden % Heads != 0 || Hidden / Heads % 2 != 0)
            throw SettingChecks.Bad(Heads, $"a divisor of Hidden ({Hidden}) that leaves heads of an even size", nameof(Heads));
        SettingChecks.FitOneArray(Steps, (long)Batch * Context, $"with Batch {Batch} at Context {Context}", nameof(Steps));
        return this;
    }

    /// <summary>The model's config for a vocabulary.</summary>
    /// <exception cref="SettingOutOfRangeException"><see cref="Heads"/> does not divide <see cref="Hidden"/> into heads of an even size.</exception>
    /// <param name="vocabSize">Tokenizer vocabulary.</param>
    public LlamaConfig Config(int vocabSize) => Validated().ConfigOf(vocabSize);

    private LlamaConfig ConfigOf(int vocabSize) => new()
    {
        VocabSize = vocabSize,
        HiddenSize = Hidden,
        IntermediateSize = Intermediate,
        NumHiddenLayers = Layers,
        NumAttentionHeads = Heads,
        NumKeyValueHeads = Heads,
        HeadDim = Hidden / Heads,
        MaxPositionEmbeddings = Context,
        TieWordEmbeddings = true,
        Rope = new RopeParameters { Theta = RopeTheta },
    };

    /// <summary>The settings as JSON (the manifest's <c>settings</c>).</summary>
    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this)!.AsObject();
}
