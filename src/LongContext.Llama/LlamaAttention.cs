using LongContext.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// Grouped-query self-attention of a Llama layer: q/k/v projections, rotary embedding of q and k (with the tables the
/// model computed once for the forward), the library's <see cref="AttentionCore"/> (which decides full causal or
/// shifted sparse attention per training state), and the output projection.
/// Input (B, N, hidden); output (B, N, hidden).
/// </summary>
public sealed class LlamaAttention : nn.Module<Tensor, DecoderInputs, Tensor>
{
#pragma warning disable IDE1006 // HF parameter names come from these field names
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;
#pragma warning restore IDE1006
    private readonly AttentionCore core;
    private readonly int heads;
    private readonly int kvHeads;
    private readonly int headDim;

    /// <summary>Creates the attention block.</summary>
    /// <param name="config">Sizes, bias switch and attention dropout (the training options' dropout).</param>
    /// <param name="dtype">Parameter dtype.</param>
    public LlamaAttention(LlamaConfig config, ScalarType dtype = ScalarType.Float32) : base(nameof(LlamaAttention))
    {
        ArgumentNullException.ThrowIfNull(config);
        heads = config.NumAttentionHeads;
        kvHeads = config.NumKeyValueHeads;
        headDim = config.HeadDim;
        q_proj = nn.Linear(config.HiddenSize, heads * headDim, config.AttentionBias, dtype: dtype);
        k_proj = nn.Linear(config.HiddenSize, kvHeads * headDim, config.AttentionBias, dtype: dtype);
        v_proj = nn.Linear(config.HiddenSize, kvHeads * headDim, config.AttentionBias, dtype: dtype);
        o_proj = nn.Linear(heads * headDim, config.HiddenSize, config.AttentionBias, dtype: dtype);
        core = new AttentionCore(new AttentionOptions { Mode = AttentionMode.Full, Dropout = config.AttentionDropout });
        RegisterComponents();
    }

    /// <summary>
    /// The attention core, the one owner of the attention mode: full causal attention with the config's
    /// <c>attention_dropout</c> in training and full causal attention in evaluation until
    /// <see cref="LlamaForCausalLM.ConfigureAttention"/> configures it.
    /// </summary>
    public AttentionCore Core => core;

    /// <summary>Runs attention.</summary>
    /// <param name="x">Hidden states (B, N, hidden).</param>
    /// <param name="inputs">The forward's rotary tables (N positions), key padding mask and optional KV cache slot.</param>
    /// <returns>(B, N, hidden).</returns>
    public override Tensor forward(Tensor x, DecoderInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        using var scope = NewDisposeScope();
        long b = x.size(0), n = x.size(1);
        Tensor q = inputs.Rotary.Rotate(q_proj.forward(x).view(b, n, heads, headDim).transpose(1, 2));
        Tensor k = inputs.Rotary.Rotate(k_proj.forward(x).view(b, n, kvHeads, headDim).transpose(1, 2));
        Tensor v = v_proj.forward(x).view(b, n, kvHeads, headDim).transpose(1, 2);
        if (inputs.Cache is { } cache) (k, v) = cache.Append(k, v);     // every key so far, (B, Hkv, cached + N, D)
        Tensor attn = core.forward(q, k, v, inputs.KeyPaddingMask);       // (B, H, N, D)
        Tensor merged = attn.transpose(1, 2).reshape(b, n, heads * headDim);
        return o_proj.forward(merged).MoveToOuterDisposeScope();
    }
}
