using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// One pre-norm decoder layer: <c>h = x + self_attn(input_layernorm(x)); out = h + mlp(post_attention_layernorm(h))</c>.
/// Input and output (B, N, hidden).
/// </summary>
public sealed class LlamaDecoderLayer : nn.Module<Tensor, DecoderInputs, Tensor>
{
#pragma warning disable IDE1006 // HF parameter names come from these field names
    private readonly RmsNorm input_layernorm;
    private readonly LlamaAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly LlamaMlp mlp;
#pragma warning restore IDE1006

    /// <summary>Creates the layer.</summary>
    /// <param name="config">Model config.</param>
    /// <param name="dtype">Parameter dtype.</param>
    public LlamaDecoderLayer(LlamaConfig config, ScalarType dtype = ScalarType.Float32) : base(nameof(LlamaDecoderLayer))
    {
        ArgumentNullException.ThrowIfNull(config);
        input_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype);
        self_attn = new LlamaAttention(config, dtype);
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype);
        mlp = new LlamaMlp(config, dtype);
        RegisterComponents();
    }

    /// <summary>The attention block (its <see cref="LlamaAttention.Core"/> holds the attention mode).</summary>
    public LlamaAttention SelfAttention => self_attn;

    /// <summary>
    /// Recompute this layer's activations in backward instead of keeping them (applies in training mode with
    /// gradients enabled; see <see cref="Training.ActivationCheckpoint"/>).
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the layer.</summary>
    /// <param name="x">Hidden states (B, N, hidden).</param>
    /// <param name="inputs">The forward's rotary tables and key padding mask (see <see cref="DecoderInputs"/>).</param>
    /// <returns>(B, N, hidden).</returns>
    public override Tensor forward(Tensor x, DecoderInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        // The rotary tables and the mask are checkpoint context: kept alive by the node until the recompute.
        // A cached forward (generation) never checkpoints: its cache writes must happen once.
        return GradientCheckpointing && training && torch.is_grad_enabled() && inputs.Cache is null
            ? ActivationCheckpoint.Run((input, context) => Compute(input, inputs.FromContext(context)), x, inputs.ContextTensors, parameters())
            : Compute(x, inputs);
    }

    private Tensor Compute(Tensor x, DecoderInputs inputs)
    {
        using var scope = NewDisposeScope();
        Tensor h = x + self_attn.forward(input_layernorm.forward(x), inputs);
        return (h + mlp.forward(post_attention_layernorm.forward(h))).MoveToOuterDisposeScope();
    }
}
