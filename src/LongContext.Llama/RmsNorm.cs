using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// Root-mean-square layer norm as in HF Llama: <c>weight * (x / sqrt(mean(x^2) + eps))</c>, the statistics taken
/// in float32 and the normalized value cast back to the input dtype before the weight multiplies it.
/// Input (..., hidden) any floating dtype; output same shape, in the promoted dtype of weight and input.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    /// <summary>Creates the norm with a weight of ones.</summary>
    /// <param name="hiddenSize">Width of the last dimension.</param>
    /// <param name="eps">Added to the mean square.</param>
    /// <param name="dtype">Weight dtype (default float32).</param>
    public RmsNorm(int hiddenSize, double eps, ScalarType dtype = ScalarType.Float32) : base(nameof(RmsNorm))
    {
        if (hiddenSize <= 0) throw new ArgumentOutOfRangeException(nameof(hiddenSize), hiddenSize, $"{nameof(hiddenSize)} must be positive; got {hiddenSize}.");
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{nameof(eps)} must be positive; got {eps}.");
        Eps = eps;
        weight = new Parameter(torch.ones(hiddenSize, dtype: dtype));
        RegisterComponents();
    }

    /// <summary>The epsilon.</summary>
    public double Eps { get; }

    /// <summary>The scale, shape (hidden).</summary>
    public Parameter Weight => weight;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor h = x.to(ScalarType.Float32);
        h = h * torch.rsqrt(h.pow(2).mean([-1L], keepdim: true) + Eps);
        return (weight * h.to(x.dtype)).MoveToOuterDisposeScope();
    }
}
