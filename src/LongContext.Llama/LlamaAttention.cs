using LongContext.Attention;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// Grouped-query self-attention of a Llama layer: q/k/v projections, rotary embedding of q and k, the library's
/// <see cref="AttentionCore"/> (full causal or shifted sparse), and the output projection.
/// Input (B, N, hidden); output (B, N, hidden).
/// </summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF parameter names come from these field names
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;
#pragma warning restore IDE1006
    private readonly AttentionCore core;
    private readonly Func<RotaryEmbedding> rotary;
    private readonly int heads;
    private readonly int kvHeads;
    private readonly int headDim;

    /// <summary>Creates the attention block.</summary>
    /// <param name="config">Sizes, bias switch and attention dropout.</param>
    /// <param name="rotary">The model's shared rotary embedding (not registered here, so it appears once in the
    /// module tree: the model owns it).</param>
    /// <param name="dtype">Parameter dtype.</param>
    public LlamaAttention(LlamaConfig config, Func<RotaryEmbedding> rotary, ScalarType dtype = ScalarType.Float32) : base(nameof(LlamaAttention))
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(rotary);
        heads = config.NumAttentionHeads;
        kvHeads = config.NumKeyValueHeads;
        headDim = config.HeadDim;
        this.rotary = rotary;
        q_proj = nn.Linear(config.HiddenSize, heads * headDim, config.AttentionBias, dtype: dtype);
        k_proj = nn.Linear(config.HiddenSize, kvHeads * headDim, config.AttentionBias, dtype: dtype);
        v_proj = nn.Linear(config.HiddenSize, kvHeads * headDim, config.AttentionBias, dtype: dtype);
        o_proj = nn.Linear(heads * headDim, config.HiddenSize, config.AttentionBias, dtype: dtype);
        TrainingAttention = new AttentionOptions { Mode = AttentionMode.Full, Dropout = config.AttentionDropout };
        EvaluationAttention = new AttentionOptions { Mode = AttentionMode.Full };
        // This layer picks the options per training state itself (TrainingAttention / EvaluationAttention).
        core = new AttentionCore(EvaluationAttention) { FullAttentionWhenEvaluating = false };
        RegisterComponents();
    }

    /// <summary>Attention used while the module is in training mode (<c>train()</c>), e.g. shifted sparse.</summary>
    public AttentionOptions TrainingAttention { get; set; }

    /// <summary>Attention used in evaluation mode (<c>eval()</c>), normally full causal.</summary>
    public AttentionOptions EvaluationAttention { get; set; }

    /// <summary>Runs attention.</summary>
    /// <param name="x">Hidden states (B, N, hidden).</param>
    /// <param name="positionIds">Positions (B, N) or (N), int64.</param>
    /// <returns>(B, N, hidden).</returns>
    public override Tensor forward(Tensor x, Tensor positionIds)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], n = x.shape[1];
        Tensor q = q_proj.forward(x).view(b, n, heads, headDim).transpose(1, 2);
        Tensor k = k_proj.forward(x).view(b, n, kvHeads, headDim).transpose(1, 2);
        Tensor v = v_proj.forward(x).view(b, n, kvHeads, headDim).transpose(1, 2);
        (q, k) = rotary().Apply(q, k, positionIds);
        core.Options = training ? TrainingAttention : EvaluationAttention;
        Tensor attn = core.forward(q, k, v);                       // (B, H, N, D)
        Tensor merged = attn.transpose(1, 2).reshape(b, n, heads * headDim);
        return o_proj.forward(merged).MoveToOuterDisposeScope();
    }
}
