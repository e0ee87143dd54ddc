using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// A linear-like base layer (<c>y = x·Wᵀ + b</c>, W of shape (out, in)) as <see cref="LoraLinear"/> reaches it:
/// its sizes, its dense weight and bias, and how a merge writes the weight. <see cref="Of"/> describes a TorchSharp
/// <c>Linear</c>; <c>QLora.Resolve</c> a 4-bit linear; derive from this class for any other base.
/// </summary>
/// <remarks>
/// This is the one place a LoRA linear reads its base weight: the fused forward reads <see cref="ReadWeight"/> (and,
/// when <see cref="WeightIsCopy"/>, reads it again in backward instead of keeping it), merging calls
/// <see cref="LoraBaseDescriptor.AddToWeight"/>.
/// </remarks>
public abstract class LinearBaseDescriptor : LoraBaseDescriptor
{
    /// <summary>Describes a base layer with the given sizes.</summary>
    /// <param name="module">The base layer, mapping (*, in) to (*, out).</param>
    /// <param name="inFeatures">in, positive.</param>
    /// <param name="outFeatures">out, positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    protected LinearBaseDescriptor(nn.Module<Tensor, Tensor> module, long inFeatures, long outFeatures) : base(module)
    {
        InFeatures = Guard.Positive(inFeatures);
        OutFeatures = Guard.Positive(outFeatures);
    }

    /// <summary>Input features: the width of the last input dimension and the weight's second dimension.</summary>
    public long InFeatures { get; }

    /// <summary>Output features: the weight's first dimension.</summary>
    public long OutFeatures { get; }

    /// <summary>
    /// True when <see cref="ReadWeight"/> computes a new tensor on every call (for example by dequantizing), which
    /// the caller disposes; false when it returns the base's own parameter, which the caller must never dispose.
    /// </summary>
    public abstract bool WeightIsCopy { get; }

    /// <summary>The dense weight, shape (out, in), in <see cref="LoraBaseDescriptor.WeightDtype"/>, on the base's device, without autograd history.</summary>
    public abstract Tensor ReadWeight();

    /// <summary>The base's bias, shape (out), or null when it has none (never disposed by callers).</summary>
    public abstract Tensor? Bias { get; }

    /// <summary>Describes a TorchSharp <c>Linear</c>: its registered weight and bias, merged into in place.</summary>
    /// <param name="linear">The layer.</param>
    public static LinearBaseDescriptor Of(Linear linear) => new TorchLinear(Guard.NotNull(linear));

    private sealed class TorchLinear(Linear linear)
        : LinearBaseDescriptor(linear, linear.weight!.shape[1], linear.weight.shape[0])
    {
        // TorchSharp's managed Linear returns its own Parameter objects here (no new native handle per call).
        private Parameter Weight => linear.weight!;

        public override ScalarType WeightDtype => Weight.dtype;

        public override Device Device => Weight.device;

        public override bool WeightIsCopy => false;

        public override Tensor ReadWeight() => Weight;

        public override Tensor? Bias => linear.bias;

        public override void AddToWeight(Tensor delta)
        {
            ArgumentNullException.ThrowIfNull(delta);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            Weight.add_(delta.to(Weight.device));
        }
    }
}
