using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LongContext.Quantization;

/// <summary>
/// A frozen linear layer whose weight is stored in 4 bits (bitsandbytes' <c>Linear4bit</c>): only the packed codes and
/// the quantization state are kept; the weight is dequantized into the compute dtype on the fly in forward and again
/// in backward (it is never saved for backward). Gradients reach the input, never the packed weight. y = x W^T + b.
/// </summary>
/// <remarks>
/// <c>to(dtype)</c> changes the compute dtype (and the bias dtype), never the stored codes; <c>to(device)</c> moves the
/// state. <see cref="state_dict"/> emits bitsandbytes' keys (<c>weight</c>, <c>weight.absmax</c>, <c>weight.quant_map</c>,
/// <c>weight.nested_absmax</c>, <c>weight.nested_quant_map</c>, <c>weight.quant_state.bitsandbytes__nf4</c>, <c>bias</c>).
/// </remarks>
public sealed class Linear4Bit : Module<Tensor, Tensor>
{
    private QuantState4Bit _state;
    private Parameter? bias;
    private ScalarType _computeDtype;

    /// <summary>Creates a layer from an existing 4-bit state of a (out, in) weight.</summary>
    /// <param name="state">A quantized 2-D weight (out_features, in_features); the layer takes ownership.</param>
    /// <param name="bias">Optional bias (out_features); copied and frozen.</param>
    /// <param name="computeDtype">Dtype of the dequantized weight and of the matmul; defaults to the state's original dtype.</param>
    public Linear4Bit(QuantState4Bit state, Tensor? bias = null, ScalarType? computeDtype = null) : base(nameof(Linear4Bit))
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Shape.Length != 2)
            throw new ArgumentException($"state must hold a 2-D (out, in) weight; got shape [{string.Join(", ", state.Shape)}].", nameof(state));
        _computeDtype = computeDtype ?? state.OriginalDtype;
        BlockwiseChecks.FloatDtype(_computeDtype, nameof(computeDtype));
        if (bias is not null)
        {
            if (bias.dim() != 1 || bias.size(0) != state.Shape[0])
                throw new ArgumentException($"bias must have shape [{state.Shape[0]}]; got [{string.Join(", ", bias.shape)}].", nameof(bias));
            this.bias = new Parameter(bias.detach().clone().to(state.Device), requires_grad: false);
        }
        _state = state;
        RegisterComponents();
    }

    /// <summary>Quantizes a float <see cref="TorchSharp.Modules.Linear"/> (its weight is read once, the linear is left untouched).</summary>
    /// <param name="linear">The layer to quantize (weight float32/bfloat16/float16).</param>
    /// <param name="type">NF4 (default, QLoRA) or FP4.</param>
    /// <param name="blockSize">Elements per block: a power of two in [32, 4096].</param>
    /// <param name="doubleQuant">Quantize the block scales too (QLoRA's double quantization; default true).</param>
    /// <param name="computeDtype">Compute dtype; defaults to the weight's dtype.</param>
    /// <exception cref="ArgumentException">The weight holds NaN or an infinity (the message gives the first one's index).</exception>
    public static Linear4Bit FromLinear(Linear linear, QuantType type = QuantType.Nf4, int blockSize = 64,
                                        bool doubleQuant = true, ScalarType? computeDtype = null)
    {
        ArgumentNullException.ThrowIfNull(linear);
        Tensor weight = linear.weight ?? throw new ArgumentException("linear has no weight.", nameof(linear));
        var state = Blockwise4Bit.Quantize(weight, type, blockSize, doubleQuant, recordedDtype: null, nameof(linear), "linear.weight");
        return new Linear4Bit(state, linear.bias, computeDtype ?? weight.dtype);
    }

    /// <summary>Input features (columns of the weight).</summary>
    public long InFeatures => _state.Shape[1];

    /// <summary>Output features (rows of the weight).</summary>
    public long OutFeatures => _state.Shape[0];

    /// <summary>The stored quantization state (owned by the layer).</summary>
    public QuantState4Bit State => _state;

    /// <summary>The frozen bias (out_features), or null.</summary>
    public Parameter? Bias => bias;

    /// <summary>The dtype the weight is dequantized into and the matmul runs in.</summary>
    public ScalarType ComputeDtype => _computeDtype;

    /// <summary>Whether the block scales are double-quantized.</summary>
    public bool DoubleQuant => _state.Nested is not null;

    /// <summary>Stored bytes of the weight state per weight element (about 0.516 for NF4, block 64, double quant).</summary>
    public double BytesPerParameter => _state.BytesPerParameter;

    /// <summary>Bytes held by the layer: the weight state plus the bias.</summary>
    public long StoredBytes => _state.StoredBytes + (bias is null ? 0 : bias.numel() * bias.ElementSize);

    /// <summary>y = x W^T + b with W dequantized in the compute dtype.</summary>
    /// <param name="input">(..., in_features), any float dtype; cast to the compute dtype and the result cast back.</param>
    /// <returns>(..., out_features) in the input's dtype.</returns>
    /// <exception cref="ArgumentException"><paramref name="input"/> is a scalar, not a floating-point tensor, or its last
    /// dimension is not <see cref="InFeatures"/> (the message gives both widths).</exception>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() == 0)
            throw new ArgumentException($"input must have shape (..., {InFeatures}); got a scalar (0-dimensional) tensor.", nameof(input));
        if (!input.is_floating_point())
            throw new ArgumentException($"input must be a floating-point tensor of shape (..., {InFeatures}); got {input.dtype}.", nameof(input));
        if (input.size(-1) != InFeatures)
            throw new ArgumentException(
                $"input's last dimension must equal in_features = {InFeatures}; got {input.size(-1)} (shape [{string.Join(", ", input.shape)}]).",
                nameof(input));
        using var scope = NewDisposeScope();
        ScalarType inputDtype = input.dtype;
        var x = inputDtype == _computeDtype ? input : input.to(_computeDtype);
        var y = Dequantized4BitMatmul.apply(x, this);
        if (bias is not null) y = y + bias.to(_computeDtype);
        if (y.dtype != inputDtype) y = y.to(inputDtype);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>The dequantized weight (out_features, in_features) in the compute dtype (a new tensor, no autograd).</summary>
    public Tensor DequantizeWeight() => Blockwise4Bit.Dequantize(_state, _computeDtype);

    /// <summary>
    /// Requantizes the layer from a dense weight with the same data type, block size and double quantization (and the
    /// state's own 8-bit map, e.g. the one a loaded checkpoint carries). Used by LoRA merge: dequantize, add the delta,
    /// requantize; this is lossy. Do not call while a graph that ran this layer still awaits its backward pass.
    /// </summary>
    /// <param name="dense">(out_features, in_features), float32/bfloat16/float16, finite.</param>
    /// <exception cref="ArgumentException">The shape differs, or <paramref name="dense"/> holds NaN or an infinity (the
    /// layer is left unchanged).</exception>
    public void ReplaceWeight(Tensor dense)
    {
        ArgumentNullException.ThrowIfNull(dense);
        if (dense.dim() != 2 || dense.size(0) != OutFeatures || dense.size(1) != InFeatures)
            throw new ArgumentException($"dense must have shape [{OutFeatures}, {InFeatures}]; got [{string.Join(", ", dense.shape)}].", nameof(dense));
        using var onDevice = dense.to(_state.Device);
        var fresh = Blockwise4Bit.Quantize(onDevice, _state.QuantType, _state.BlockSize, _state.Nested is not null, _state.OriginalDtype,
                                           nameof(dense), tensorName: null, _state.Nested?.Map);
        var old = _state;
        _state = fresh;
        old.Dispose();
    }

    /// <summary>
    /// Merges a dense delta into the 4-bit weight: W' = quantize(dequantize(W) + delta). This is lossy: the result is
    /// rounded to the 4-bit grid again, so W' differs from dequantize(W) + delta by up to half a code gap times the
    /// block scale (NF4's widest gap, between -1 and -0.696, is 0.304, so at most 0.152 of the block's absmax per
    /// element, plus the 8-bit scale's own error under double quantization). Measured on a 1024x1024 Gaussian
    /// weight (std 0.02) with a rank-16 delta: max error 0.112 of max |W|, relative RMS error 0.092 of the target,
    /// the same as quantizing a weight once (the delta itself is not preserved exactly: 0.24 of its norm).
    /// </summary>
    /// <param name="delta">(out_features, in_features), e.g. LoRA's scaling * B A.</param>
    /// <returns>The requantization error: max |dequantize(W') - (dequantize(W) + delta)|.</returns>
    /// <exception cref="ArgumentException">The shape differs, or <paramref name="delta"/> holds NaN or an infinity (the
    /// layer is left unchanged).</exception>
    public double MergeDelta(Tensor delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (delta.dim() != 2 || delta.size(0) != OutFeatures || delta.size(1) != InFeatures)
            throw new ArgumentException($"delta must have shape [{OutFeatures}, {InFeatures}]; got [{string.Join(", ", delta.shape)}].", nameof(delta));
        BlockwiseChecks.RequireFinite(delta, nameof(delta), tensorName: null);
        using var scope = NewDisposeScope();
        var target = Blockwise4Bit.Dequantize(_state, ScalarType.Float32) + delta.detach().to(ScalarType.Float32, _state.Device);
        ReplaceWeight(target);
        return (Blockwise4Bit.Dequantize(_state, ScalarType.Float32) - target).abs().max().item<float>();
    }

    /// <summary>Replaces the whole quantization state (e.g. when loading a checkpoint); shape must match.</summary>
    /// <param name="state">A state of shape (out_features, in_features); the layer takes ownership.</param>
    public void LoadState(QuantState4Bit state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Shape.Length != 2 || state.Shape[0] != OutFeatures || state.Shape[1] != InFeatures)
            throw new ArgumentException($"state must have shape [{OutFeatures}, {InFeatures}]; got [{string.Join(", ", state.Shape)}].", nameof(state));
        state.MoveTo(_state.Device);
        var old = _state;
        _state = state;
        if (!ReferenceEquals(old, state)) old.Dispose();
    }

    /// <summary>bitsandbytes-named entries: the packed weight as uint8 (n/2, 1), its state tensors and the bias.</summary>
    /// <param name="destination">Dictionary to add to (created when null).</param>
    /// <param name="prefix">Key prefix (the module path), or null.</param>
    public override Dictionary<string, Tensor> state_dict(Dictionary<string, Tensor>? destination = null, string? prefix = null)
    {
        destination ??= new Dictionary<string, Tensor>();
        string p = string.IsNullOrEmpty(prefix) ? "" : prefix + ".";
        foreach (var (key, value) in LongContext.IO.Bnb4BitStateDict.Write(_state))
            destination.TryAdd(p + key, value);
        if (bias is not null) destination.TryAdd(p + "bias", bias);
        return destination;
    }

    internal void SetBias(Parameter? replacement)
    {
        bias = replacement;
        if (replacement is null) return;
        ConditionallyRegisterParameter("bias", replacement);
    }

    /// <inheritdoc/>
    protected override Module _to(DeviceType deviceType, int deviceIndex, bool non_blocking)
    {
        base._to(deviceType, deviceIndex, non_blocking);
        _state.MoveTo(torch.device(deviceType, deviceIndex));
        return this;
    }

    /// <inheritdoc/>
    protected override Module _to(Device device, ScalarType dtype, bool non_blocking)
    {
        _to(device.type, device.index, non_blocking);
        return _to(dtype, non_blocking);
    }

    /// <inheritdoc/>
    protected override Module _to(ScalarType dtype, bool non_blocking)
    {
        BlockwiseChecks.FloatDtype(dtype, nameof(dtype));
        base._to(dtype, non_blocking);
        _computeDtype = dtype;
        return this;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _state.Dispose();
        base.Dispose(disposing);
    }
}
