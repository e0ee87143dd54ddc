using LongContext.Attention;
using LongContext.Llama.Generation;
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
        positionIds ??= torch.arange(ids.size(1), dtype: ScalarType.Int64, device: ids.device).unsqueeze(0);
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

    /// <summary>
    /// Runs new tokens through the model with a KV cache and returns the next-token logits at the last position only
    /// (never (N, vocab)). The tokens' keys and values are appended to <paramref name="cache"/>; a long input runs in
    /// chunks of <paramref name="chunkSize"/> queries, each attending the cache and itself, so no (N, N) score matrix
    /// is formed. The rotary cos/sin of all N positions are computed once, before the first chunk, so a dynamic-NTK or
    /// LongRoPE rope sees the whole length as a full forward would. Attention is the evaluation options' (full causal;
    /// S2 is never used with a cache). Cached decoding equals a full forward of the whole sequence as long as the
    /// rope's frequencies do not change between calls; when they would (dynamic NTK past
    /// <c>max_position_embeddings</c>, LongRoPE crossing its original window) this throws rather than mixing keys of two
    /// frequency sets: <see cref="LlamaGenerator"/> then recomputes the sequence.
    /// </summary>
    /// <param name="inputIds">Token ids (B, N), an integer type, each in [0, vocab); B = the cache's batch size.</param>
    /// <param name="cache">The cache; it must have room for N more positions.</param>
    /// <param name="attentionMask">HF attention mask (B, cached + N) over every cached and new token, 1 = token,
    /// 0 = padding (as HF's with <c>past_key_values</c>); null when nothing is padded.</param>
    /// <param name="positionIds">Positions of the new tokens (B, N) int64; null for cached + 0..N-1 in every row.</param>
    /// <param name="chunkSize">Queries per chunk, positive; null for all N at once.</param>
    /// <returns>Logits (B, vocab) at the last new position, in the parameter dtype.</returns>
    /// <exception cref="InvalidOperationException">The model is in training mode, an evaluation core uses S2, or the
    /// rope's frequencies changed since the cache was filled.</exception>
    public Tensor NextTokenLogits(Tensor inputIds, KvCache cache, Tensor? attentionMask = null, Tensor? positionIds = null, int? chunkSize = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        CheckInputIds(inputIds);
        long b = inputIds.size(0), n = inputIds.size(1);
        if (b != cache.BatchSize)
            throw new ArgumentException($"{nameof(inputIds)} has {b} rows but the cache was allocated for {cache.BatchSize}.", nameof(inputIds));
        cache.EnsureRoom(n, nameof(inputIds), "tokens");
        if (chunkSize is int c && c <= 0)
            throw new ArgumentOutOfRangeException(nameof(chunkSize), c, $"{nameof(chunkSize)} must be positive; got {c}.");
        if (training)
            throw new InvalidOperationException("cached decoding runs in evaluation mode (full attention, no dropout); call eval() first.");
        var s2 = model.Layers.Select((l, i) => (l.SelfAttention.Core.EvaluationOptions.Mode, i)).FirstOrDefault(x => x.Mode == AttentionMode.ShiftedSparse);
        if (s2.Mode == AttentionMode.ShiftedSparse)
            throw new InvalidOperationException($"layer {s2.i}'s attention core uses ShiftedSparse in evaluation mode; S2 is a training pattern and a KV cache needs full attention.");
        long total = cache.Length + n;
        if (attentionMask is not null)
        {
            if (attentionMask.dim() != 2 || attentionMask.size(0) != b || attentionMask.size(1) != total)
                throw new ArgumentException(
                    $"{nameof(attentionMask)} must cover the {cache.Length} cached and {n} new tokens, ({b}, {total}); got ({string.Join(", ", attentionMask.shape)}).", nameof(attentionMask));
            using var probe = zeros(b, total, dtype: ScalarType.Int64, device: inputIds.device);
            AttentionMasks.Check(attentionMask, probe, nameof(attentionMask));
        }
        using var scope = NewDisposeScope();
        Tensor ids = inputIds.dtype == ScalarType.Int64 ? inputIds : inputIds.to(ScalarType.Int64);
        positionIds ??= torch.arange(cache.Length, total, dtype: ScalarType.Int64, device: ids.device).unsqueeze(0).expand(b, n);
        if (positionIds.dim() != 2 || positionIds.size(0) != b || positionIds.size(1) != n)
            throw new ArgumentException($"{nameof(positionIds)} must be ({b}, {n}); got ({string.Join(", ", positionIds.shape)}).", nameof(positionIds));
        RotaryPositions rotary = RotaryPositions.Compute(model.RotaryEmbedding, positionIds, model.ComputeDtype);
        cache.CheckRope(model.RotaryEmbedding);
        Tensor? keep = AttentionMasks.KeyMask(attentionMask);
        int chunk = (int)Math.Min(chunkSize ?? n, n);
        Tensor last = null!;
        for (long start = 0; start < n; start += chunk)
        {
            using var step = NewDisposeScope();
            long length = Math.Min(chunk, n - start);
            Tensor? chunkKeep = keep?.narrow(1, 0, cache.Length + length);
            Tensor h = model.ForwardCached(ids.narrow(1, start, length), rotary.Narrow(start, length), chunkKeep, cache);
            last = h.narrow(1, length - 1, 1).MoveToOuterDisposeScope();
        }
        return Project(last).squeeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>Hidden states (..., hidden) to logits (..., vocab) through <c>lm_head</c> (or the tied embedding).</summary>
    private Tensor Project(Tensor hidden)
        => lm_head is null ? nn.functional.linear(hidden, model.EmbeddingWeight) : lm_head.forward(hidden);

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
