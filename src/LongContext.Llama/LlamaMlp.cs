using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// The SwiGLU MLP: <c>down_proj(silu(gate_proj(x)) * up_proj(x))</c>. Input and output (..., hidden).
/// Submodule fields carry HF's names; they are typed as modules so LoRA or 4-bit layers can replace them.
/// </summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF parameter names come from these field names
    private nn.Module<Tensor, Tensor> gate_proj;
    private nn.Module<Tensor, Tensor> up_proj;
    private nn.Module<Tensor, Tensor> down_proj;
#pragma warning restore IDE1006

    /// <summary>Creates the MLP from a config.</summary>
    /// <param name="config">Sizes and bias switch.</param>
    /// <param name="dtype">Parameter dtype.</param>
    public LlamaMlp(LlamaConfig config, ScalarType dtype = ScalarType.Float32) : base(nameof(LlamaMlp))
    {
        ArgumentNullException.ThrowIfNull(config);
        gate_proj = nn.Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, dtype: dtype);
        up_proj = nn.Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, dtype: dtype);
        down_proj = nn.Linear(config.IntermediateSize, config.HiddenSize, config.MlpBias, dtype: dtype);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x)).MoveToOuterDisposeScope();
    }
}
