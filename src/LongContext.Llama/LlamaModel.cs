using LongContext.Rope;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// The decoder stack (HF's <c>LlamaModel</c>, found under <c>model.</c> in checkpoints): token embedding,
/// <see cref="LlamaDecoderLayer"/>s sharing one rotary embedding, and the final RMSNorm.
/// Input token ids (B, N) int64; output hidden states (B, N, hidden).
/// </summary>
public sealed class LlamaModel : nn.Module<Tensor, Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF parameter names come from these field names
    private readonly Embedding embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly RmsNorm norm;
#pragma warning restore IDE1006
    // The rotary embedding has no parameters or buffers (it caches its tables per device itself); it is held outside
    // the module registry so that a rope change (position interpolation) can swap it.
    private readonly RotaryHolder rotaryHolder = new();

    /// <summary>Creates the stack with freshly initialized parameters.</summary>
    /// <param name="config">Model config.</param>
    /// <param name="dtype">Parameter dtype.</param>
    public LlamaModel(LlamaConfig config, ScalarType dtype = ScalarType.Float32) : base(nameof(LlamaModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        embed_tokens = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: config.PaddingIndex, dtype: dtype);
        rotaryHolder.Current = new RotaryEmbedding(RotaryOptions(config));
        layers = new ModuleList<LlamaDecoderLayer>();
        for (int i = 0; i < config.NumHiddenLayers; i++) layers.Add(new LlamaDecoderLayer(config, () => rotaryHolder.Current, dtype));
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype);
        RegisterComponents();
    }

    /// <summary>The token embedding (vocab, hidden).</summary>
    public Embedding EmbedTokens => embed_tokens;

    /// <summary>The decoder layers, in order.</summary>
    public IReadOnlyList<LlamaDecoderLayer> Layers => layers.ToList();

    /// <summary>The rotary embedding shared by every layer.</summary>
    public RotaryEmbedding RotaryEmbedding => rotaryHolder.Current;

    /// <summary>Replaces the rotary embedding (after a rope change such as position interpolation).</summary>
    /// <param name="config">The config whose <see cref="LlamaConfig.Rope"/>, head size and context length to use.</param>
    internal void RebuildRotary(LlamaConfig config)
    {
        var old = rotaryHolder.Current;
        rotaryHolder.Current = new RotaryEmbedding(RotaryOptions(config));
        old.Dispose();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) rotaryHolder.Current.Dispose();
        base.Dispose(disposing);
    }

    private static RotaryEmbeddingOptions RotaryOptions(LlamaConfig config)
        => new(config.HeadDim, config.MaxPositionEmbeddings, config.Rope, RotaryLayout.HalfSplit);

    /// <summary>Runs the stack.</summary>
    /// <param name="inputIds">Token ids (B, N), int64.</param>
    /// <param name="positionIds">Positions (B, N) or (N), int64.</param>
    /// <returns>Final-normed hidden states (B, N, hidden).</returns>
    public override Tensor forward(Tensor inputIds, Tensor positionIds)
    {
        using var scope = NewDisposeScope();
        Tensor h = embed_tokens.forward(inputIds);
        foreach (LlamaDecoderLayer layer in layers)
            h = layer.forward(h, positionIds);   // each layer applies its own activation checkpointing
        return norm.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>Holds the rotary embedding outside TorchSharp's field-based module registration.</summary>
internal sealed class RotaryHolder
{
    public RotaryEmbedding Current { get; set; } = null!;
}
