using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>
/// x W^T for a 4-bit W as a custom autograd function: W is dequantized in forward and again in backward, so no
/// dequantized weight stays alive between the passes. The only gradient is the input's: dL/dx = dL/dy W.
/// </summary>
internal sealed class Dequantized4BitMatmul : autograd.SingleTensorFunction<Dequantized4BitMatmul>
{
    private const string LayerKey = "layer";

    public override string Name => nameof(Dequantized4BitMatmul);

    /// <summary>vars: [0] input (..., in) in the compute dtype, [1] the <see cref="Linear4Bit"/>.</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var layer = (Linear4Bit)vars[1];
        ctx.save_data(LayerKey, layer);
        using var w = layer.DequantizeWeight();
        return nn.functional.linear(x, w);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        var layer = (Linear4Bit)ctx.get_data(LayerKey);
        using var w = layer.DequantizeWeight();
        var gradInput = grad_output.to(w.dtype).matmul(w);
        return new List<Tensor> { gradInput, null! };
    }
}
