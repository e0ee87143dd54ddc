using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Baselines;

/// <summary>
/// peft's LoRA forward, eager: <c>base(x) + lora_B(lora_A(dropout(x))) * (alpha / r)</c> with dropout 0 (identity) and
/// the base weight frozen. Holds only references; the caller owns the modules.
/// </summary>
/// <param name="Base">The frozen base layer, weight (out, in).</param>
/// <param name="A">lora_A, weight (r, in).</param>
/// <param name="B">lora_B, weight (out, r).</param>
/// <param name="Scaling">alpha / r.</param>
public sealed record PeftStyleLora(Linear Base, Linear A, Linear B, double Scaling)
{
    /// <summary>x (T, in) to (T, out).</summary>
    public Tensor Forward(Tensor x) => Base.forward(x) + B.forward(A.forward(x)) * Scaling;

    /// <summary>The same with a base weight given as a tensor (the QLoRA recipe passes the dequantized weight).</summary>
    public Tensor Forward(Tensor x, Tensor baseWeight) => nn.functional.linear(x, baseWeight) + B.forward(A.forward(x)) * Scaling;
}
