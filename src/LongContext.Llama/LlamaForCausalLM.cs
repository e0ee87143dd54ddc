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

    /// <summary>Logits for token ids at positions 0..N-1.</summary>
    /// <param name="inputIds">Token ids (B, N), int64.</param>
    /// <returns>Logits (B, N, vocab) in the parameter dtype.</returns>
    public override Tensor forward(Tensor inputIds) => Forward(inputIds, null);

    /// <summary>Logits for token ids at given positions.</summary>
    /// <param name="inputIds">Token ids (B, N), int64.</param>
    /// <param name="positionIds">Positions (B, N) or (N), int64; null for 0..N-1.</param>
    /// <returns>Logits (B, N, vocab) in the parameter dtype.</returns>
    public Tensor Forward(Tensor inputIds, Tensor? positionIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2)
            throw new ArgumentException($"{nameof(inputIds)} must be (batch, seq); got shape [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        using var scope = NewDisposeScope();
        positionIds ??= torch.arange(inputIds.shape[1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        Tensor h = model.forward(inputIds, positionIds);
        Tensor logits = lm_head is null ? nn.functional.linear(h, model.EmbedTokens.weight!) : lm_head.forward(h);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>Mean next-token cross-entropy of <paramref name="inputIds"/> against <paramref name="labels"/>.</summary>
    /// <param name="inputIds">Token ids (B, N), int64.</param>
    /// <param name="labels">Targets (B, N), int64, aligned with the inputs (shifted inside); -100 is ignored.</param>
    /// <returns>A scalar float32 loss.</returns>
    public Tensor Loss(Tensor inputIds, Tensor labels)
    {
        using var scope = NewDisposeScope();
        return CausalLmLoss.Compute(forward(inputIds), labels).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sets the attention each layer uses in training mode and in evaluation mode (LongLoRA trains with shifted
    /// sparse attention and evaluates with full attention; the weights are the same).
    /// </summary>
    /// <param name="training">Options in force after <c>train()</c>.</param>
    /// <param name="evaluation">Options in force after <c>eval()</c>; null keeps full causal attention.</param>
    public void ConfigureAttention(AttentionOptions training, AttentionOptions? evaluation = null)
    {
        ArgumentNullException.ThrowIfNull(training);
        evaluation ??= new AttentionOptions { Mode = AttentionMode.Full };
        foreach (LlamaDecoderLayer layer in model.Layers)
        {
            layer.SelfAttention.TrainingAttention = training;
            layer.SelfAttention.EvaluationAttention = evaluation;
        }
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
