using LongContext.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// A Llama-family causal language model (HF's <c>LlamaForCausalLM</c>): <see cref="LlamaModel"/> under
/// <c>model.</c> and an <c>lm_head</c> projection to the vocabulary, tied to the embedding when
/// <see cref="LlamaConfig.TieWordEmbeddings"/> is set. Parameter names equal HF's
/// (<c>model.layers.0.self_attn.q_proj.weight</c>, ...). Input token ids (B, N) int64; output logits (B, N, vocab).
/// </summary>
public sealed class LlamaForCausalLM : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF parameter names come from these field names
    private readonly LlamaModel model;
    private nn.Module<Tensor, Tensor>? lm_head;
#pragma warning restore IDE1006

    /// <summary>Creates a model with freshly initialized parameters (use <see cref="LlamaCheckpoint.Load"/> for weights).</summary>
    /// <param name="config">Model config (validated when it was built).</param>
    /// <param name="dtype">Parameter dtype (default float32).</param>
    public LlamaForCausalLM(LlamaConfig config, ScalarType dtype = ScalarType.Float32) : base(nameof(LlamaForCausalLM))
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        model = new LlamaModel(config, dtype);
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>The config in force (updated by recipes that change the rope scaling).</summary>
    public LlamaConfig Config { get; private set; }

    /// <summary>The decoder stack.</summary>
    public LlamaModel Model => model;

    /// <summary>Logits for token ids at positions 0..N-1, without padding.</summary>
    /// <param name="inputIds">Token ids (B, N), int64 (or another integer type), each in [0, vocab).</param>
    /// <returns>Logits (B, N, vocab) in the parameter dtype.</returns>
    public override Tensor forward(Tensor inputIds) => forward(inputIds, null, null);

    /// <summary>Logits for padded token ids, at given or default positions.</summary>
    /// <param name="inputIds">Token ids (B, N), int64 (or another integer type), each in [0, vocab).</param>
    /// <param name="attentionMask">HF attention mask (B, N), 1 = token, 0 = padding (bool or integer); null for none.
    /// Padded keys are never attended; logits at padded positions are not meaningful.</param>
    /// <param name="positionIds">Positions (B, N) or (N), int64; null for 0..N-1 in every row, as HF's forward does
    /// (for left padding, <see cref="AttentionMasks.PositionIds"/> gives each row's real tokens positions from 0).</param>
    /// <returns>Logits (B, N, vocab) in the parameter dtype.</returns>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? positionIds = null)
    {
        CheckInputIds(inputIds);
        if (attentionMask is not null) AttentionMasks.Check(attentionMask, inputIds, nameof(attentionMask));
        using var scope = NewDisposeScope();
        Tensor ids = inputIds.dtype == ScalarType.Int64 ? inputIds : inputIds.to(ScalarType.Int64);
        positionIds ??= torch.arange(ids.shape[1], dtype: ScalarType.Int64, device: ids.device).unsqueeze(0);
        Tensor h = model.forward(ids, positionIds, attentionMask);
        return Project(h).MoveToOuterDisposeScope();
    }

    /// <summary>Mean next-token cross-entropy of <paramref name="inputIds"/> against <paramref name="labels"/>.</summary>
    /// <param name="inputIds">Token ids (B, N), an integer type, each in [0, vocab).</param>
    /// <param name="labels">Targets (B, N), an integer type, aligned with the inputs (shifted inside); -100 is ignored
    /// (set it at padded positions).</param>
    /// <param name="attentionMask">HF attention mask (B, N), 1 = token, 0 = padding; null for none.</param>
    /// <returns>A scalar float32 loss.</returns>
    public Tensor Loss(Tensor inputIds, Tensor labels, Tensor? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        CheckInputIds(inputIds);
        if (!is_integral(labels.dtype))
            throw new ArgumentException($"{nameof(labels)} must be an integer tensor (token ids, -100 to ignore); got {labels.dtype}.", nameof(labels));
        if (!labels.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException(
                $"{nameof(labels)} has shape ({string.Join(", ", labels.shape)}) but {nameof(inputIds)} has ({string.Join(", ", inputIds.shape)}); they must match (B, N).", nameof(labels));
        using var scope = NewDisposeScope();
        return CausalLmLoss.Compute(forward(inputIds, attentionMask), labels).MoveToOuterDisposeScope();
    }

    /// <summary>Hidden states (..., hidden) to logits (..., vocab) through <c>lm_head</c> (or the tied embedding).</summary>
    private Tensor Project(Tensor hidden)
        => lm_head is null ? nn.functional.linear(hidden, model.EmbedTokens.weight!) : lm_head.forward(hidden);

    /// <summary>Token ids must be a (B, N) integer tensor with every id in [0, vocab).</summary>
    private void CheckInputIds(Tensor inputIds, string name = "inputIds")
    {
        ArgumentNullException.ThrowIfNull(inputIds, name);
        if (inputIds.dim() != 2)
            throw new ArgumentException($"{name} must be (batch, seq); got shape ({string.Join(", ", inputIds.shape)}).", name);
        if (!is_integral(inputIds.dtype) || inputIds.dtype == ScalarType.Bool)
            throw new ArgumentException($"{name} must hold integer token ids (int64); got {inputIds.dtype}.", name);
        if (inputIds.numel() == 0)
            throw new ArgumentException($"{name} must hold at least one token; got shape ({string.Join(", ", inputIds.shape)}).", name);
        using var min = inputIds.min();
        using var max = inputIds.max();
        long lo = min.to(ScalarType.Int64).item<long>(), hi = max.to(ScalarType.Int64).item<long>();
        if (lo < 0 || hi >= Config.VocabSize)
            throw new ArgumentOutOfRangeException(name, lo < 0 ? lo : hi,
                $"{name} holds token id {(lo < 0 ? lo : hi)}, outside the vocabulary [0, {Config.VocabSize}).");
    }

    /// <summary>
    /// Configures the attention core of every layer once: the options in force in training mode and in evaluation
    /// mode (LongLoRA trains with shifted sparse attention and evaluates with full attention; the weights are the
    /// same). The cores then switch with <c>train()</c> / <c>eval()</c>.
    /// </summary>
    /// <param name="training">Options in force after <c>train()</c>.</param>
    /// <param name="evaluation">Options in force after <c>eval()</c>; null takes <paramref name="training"/> with
    /// full causal attention and no dropout.</param>
    public void ConfigureAttention(AttentionOptions training, AttentionOptions? evaluation = null)
    {
        ArgumentNullException.ThrowIfNull(training);
        foreach (LlamaDecoderLayer layer in model.Layers)
            layer.SelfAttention.Core.Configure(training, evaluation);
    }

    /// <summary>Turns activation checkpointing on or off, for all layers or the listed ones.</summary>
    /// <param name="enabled">Checkpoint (true) or keep activations (false).</param>
    /// <param name="layers">Layer indices; null for every layer.</param>
    public void SetGradientCheckpointing(bool enabled, IEnumerable<int>? layers = null)
    {
        var all = model.Layers;
        foreach (int i in layers ?? Enumerable.Range(0, all.Count))
        {
            if (i < 0 || i >= all.Count)
                throw new ArgumentOutOfRangeException(nameof(layers), i, $"layer index {i} is out of range; the model has {all.Count} layers.");
            all[i].GradientCheckpointing = enabled;
        }
    }

    /// <summary>Replaces the config and rebuilds the rotary embedding (used by the LongLoRA recipe for PI).</summary>
    /// <param name="config">New config; only rope settings and context length may differ from the current one.</param>
    public void UpdateRope(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var shapeOnly = config with { Rope = Config.Rope, MaxPositionEmbeddings = Config.MaxPositionEmbeddings, Source = Config.Source };
        if (shapeOnly != Config)
            throw new ArgumentException($"{nameof(config)} may change only Rope and MaxPositionEmbeddings of the model's config.", nameof(config));
        Config = config;
        model.RebuildRotary(config);
    }
}
