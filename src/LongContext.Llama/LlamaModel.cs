using LongContext.Llama.Generation;
using LongContext.Lora;
using LongContext.Rope;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// The decoder stack (HF's <c>LlamaModel</c>, found under <c>model.</c> in checkpoints): token embedding,
/// <see cref="LlamaDecoderLayer"/>s and the final RMSNorm. The rotary cos/sin are computed once per forward from the
/// position ids and handed to every layer (<see cref="DecoderInputs"/>), as HF does.
/// Input token ids (B, N) int64; output hidden states (B, N, hidden).
/// </summary>
public sealed class LlamaModel : nn.Module<Tensor, Tensor, Tensor?, Tensor>, ILoraBaseDescriber
{
#pragma warning disable IDE1006 // HF parameter names come from these field names
    // Declared as Module<Tensor, Tensor> so that LoRA can wrap it (a LoraEmbedding over the Embedding, as peft).
    private readonly nn.Module<Tensor, Tensor> embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly RmsNorm norm;
#pragma warning restore IDE1006
    // The rotary embedding has no parameters or buffers (it caches its tables per device itself); it is held outside
    // TorchSharp's field-based module registration so that a rope change (position interpolation) can replace it.
    private readonly RotarySlot rotary = new();
    private readonly long? _paddingIndex;

    /// <summary>Creates the stack with freshly initialized parameters.</summary>
    /// <param name="config">Model config.</param>
    /// <param name="dtype">Parameter dtype.</param>
    public LlamaModel(LlamaConfig config, ScalarType dtype = ScalarType.Float32) : base(nameof(LlamaModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        _paddingIndex = config.PaddingIndex;
        embed_tokens = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: _paddingIndex, dtype: dtype);
        rotary.Current = new RotaryEmbedding(RotaryOptions(config));
        layers = new ModuleList<LlamaDecoderLayer>();
        for (int i = 0; i < config.NumHiddenLayers; i++) layers.Add(new LlamaDecoderLayer(config, dtype));
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype);
        RegisterComponents();
    }

    /// <summary>
    /// The token embedding (vocab, hidden): a TorchSharp <c>Embedding</c>, or the <see cref="LoraEmbedding"/> that wraps
    /// it when LoRA targets <c>embed_tokens</c>. Read the table through <see cref="EmbeddingWeight"/>.
    /// </summary>
    public nn.Module<Tensor, Tensor> EmbedTokens => embed_tokens;

    /// <summary>
    /// The embedding table (vocab, hidden), the registered parameter (no new native handle per call): the
    /// <c>Embedding</c>'s weight, or the base table under a <see cref="LoraEmbedding"/> (without the adapter's delta
    /// unless merged). The tied output head (<see cref="LlamaConfig.TieWordEmbeddings"/>) reads this table, as in peft:
    /// LoRA on <c>embed_tokens</c> changes the input embedding only, and merging it changes the tied head too.
    /// </summary>
    /// <exception cref="NotSupportedException">The embedding was replaced by a module that is neither.</exception>
    public Parameter EmbeddingWeight => embed_tokens switch
    {
        LoraEmbedding lora => lora.Base.Table,
        Embedding plain => plain.named_parameters(recurse: false).First(p => p.name == "weight").parameter,
        var other => throw new NotSupportedException(
            $"embed_tokens is a {other.GetType().Name}; the model reads its table from an Embedding or a LoraEmbedding over one."),
    };

    /// <summary>
    /// Describes <c>embed_tokens</c> for LoRA with the config's padding index (HF's <c>padding_idx</c>, which TorchSharp's
    /// <c>Embedding</c> does not expose), so that LoRA injection and adapter loading wrap it as peft does; null for
    /// every other module.
    /// </summary>
    /// <param name="module">A module of the tree.</param>
    public LoraBaseDescriptor? DescribeForLora(nn.Module module)
        => ReferenceEquals(module, embed_tokens) && module is Embedding embedding ? EmbeddingBaseDescriptor.Of(embedding, _paddingIndex) : null;

    /// <summary>The decoder layers, in order.</summary>
    public IReadOnlyList<LlamaDecoderLayer> Layers => layers.ToList();

    /// <summary>The rotary embedding the stack computes cos/sin with.</summary>
    public RotaryEmbedding RotaryEmbedding => rotary.Current;

    /// <summary>Replaces the rotary embedding (after a rope change such as position interpolation).</summary>
    /// <param name="config">The config whose <see cref="LlamaConfig.Rope"/>, head size and context length to use.</param>
    internal void RebuildRotary(LlamaConfig config)
    {
        var old = rotary.Current;
        rotary.Current = new RotaryEmbedding(RotaryOptions(config));
        old.Dispose();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) rotary.Current.Dispose();
        base.Dispose(disposing);
    }

    private static RotaryEmbeddingOptions RotaryOptions(LlamaConfig config)
        => new(config.HeadDim, config.MaxPositionEmbeddings, config.Rope, RotaryLayout.HalfSplit);

    /// <summary>Runs the stack.</summary>
    /// <param name="inputIds">Token ids (B, N), int64.</param>
    /// <param name="positionIds">Positions (B, N) or (N), int64.</param>
    /// <param name="attentionMask">HF attention mask (B, N), 1 = token, 0 = padding (bool or integer), or null for
    /// none; padded keys are never attended and hidden states at padded positions are not meaningful.</param>
    /// <returns>Final-normed hidden states (B, N, hidden).</returns>
    public override Tensor forward(Tensor inputIds, Tensor positionIds, Tensor? attentionMask)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(positionIds);
        using var scope = NewDisposeScope();
        Tensor h = embed_tokens.forward(inputIds);
        var inputs = new DecoderInputs(RotaryPositions.Compute(rotary.Current, positionIds, h.dtype), AttentionMasks.KeyMask(attentionMask));
        foreach (LlamaDecoderLayer layer in layers)
            h = layer.forward(h, inputs);   // each layer applies its own activation checkpointing
        return norm.forward(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs new tokens through the stack with a KV cache: each layer appends their keys and values to its slot and
    /// attends over everything cached so far; the cache's length advances by N afterwards.
    /// </summary>
    /// <param name="inputIds">Token ids (B, N), int64.</param>
    /// <param name="rotary">cos/sin at the N new positions.</param>
    /// <param name="keyPaddingMask">(B, cached + N) bool, true = real token; null when nothing is padded.</param>
    /// <param name="cache">The cache; room for N more positions is checked by the caller.</param>
    /// <returns>Final-normed hidden states (B, N, hidden).</returns>
    internal Tensor ForwardCached(Tensor inputIds, RotaryPositions rotary, Tensor? keyPaddingMask, KvCache cache)
    {
        using var scope = NewDisposeScope();
        Tensor h = embed_tokens.forward(inputIds);
        var inputs = new DecoderInputs(rotary, keyPaddingMask);
        for (int i = 0; i < layers.Count; i++)
            h = layers[i].forward(h, inputs.WithCache(cache.Layers[i]));
        cache.Advance((int)inputIds.size(1));
        return norm.forward(h).MoveToOuterDisposeScope();
    }

    /// <summary>The dtype of the embedding's output (the dtype q and k are rotated in).</summary>
    internal ScalarType ComputeDtype => EmbeddingWeight.dtype;

    /// <summary>Holds the rotary embedding outside TorchSharp's field-based module registration.</summary>
    private sealed class RotarySlot
    {
        public RotaryEmbedding Current { get; set; } = null!;
    }
}
