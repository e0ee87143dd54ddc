using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// LoRA around a linear-like base layer: <c>y = base(x) + s · B(A(dropout(x)))</c>, with A (r, in) and B (out, r)
/// trainable and the base frozen, as peft's <c>lora.Linear</c> (parameters <c>lora_A.&lt;adapter&gt;.weight</c> and
/// <c>lora_B.&lt;adapter&gt;.weight</c>). The base is reached only through its <see cref="LinearBaseDescriptor"/>.
/// </summary>
/// <remarks>
/// Input (*, in) in any float dtype the base accepts; output (*, out) in the base output's dtype. When the input, the
/// base weight (and bias) and the adapter share one dtype (float32 bases, or adapters kept in the base dtype) and no
/// dropout is active, forward runs the fused formulation of <see cref="FusedForward"/>; otherwise it runs the base
/// layer and adds the rank-r product in the adapter's dtype with one addmm.
/// </remarks>
public sealed class LoraLinear : LoraLayer
{
    private readonly LinearBaseDescriptor _base;

    /// <summary>Wraps a linear-like base layer with a first adapter; the base's parameters are frozen.</summary>
    /// <param name="baseLayer">The base and its weight access (<see cref="LinearBaseDescriptor.Of"/> for a TorchSharp Linear).</param>
    /// <param name="options">The first adapter's hyper-parameters.</param>
    /// <param name="adapterName">The first adapter's name (peft's default is <c>default</c>).</param>
    public LoraLinear(LinearBaseDescriptor baseLayer, LoraOptions options, string adapterName = "default")
        : base(nameof(LoraLinear), baseLayer, "lora_A", "lora_B")
    {
        _base = baseLayer;
        AddAdapter(adapterName, options);
    }

    /// <summary>Wraps a TorchSharp <c>Linear</c> (<see cref="LinearBaseDescriptor.Of"/>).</summary>
    /// <param name="linear">The layer to adapt.</param>
    /// <param name="options">The adapter's hyper-parameters.</param>
    /// <param name="adapterName">The adapter's name.</param>
    public static LoraLinear Wrap(Linear linear, LoraOptions options, string adapterName = "default")
        => new(LinearBaseDescriptor.Of(Guard.NotNull(linear)), options, adapterName);

    /// <summary>How this layer reaches its base's weight and bias.</summary>
    public LinearBaseDescriptor Base => _base;

    /// <summary>Input features (the base weight's second dimension).</summary>
    public long InFeatures => _base.InFeatures;

    /// <summary>Output features (the base weight's first dimension).</summary>
    public long OutFeatures => _base.OutFeatures;

    /// <summary>
    /// Use the fused formulation when it applies (default true): the rank-r product added into the base GEMM's output
    /// in place, and an in-place accumulation of the input gradient. Set false for peft's three-linears formulation's memory profile (the
    /// fused autograd node keeps one output-sized buffer per call).
    /// </summary>
    public bool FusedForward { get; set; } = true;

    internal override (string A, string B) PeftKeys => ("lora_A.weight", "lora_B.weight");

    internal override (string A, string B) LiveKeys(string adapterName) => ($"lora_A.{adapterName}.weight", $"lora_B.{adapterName}.weight");

    private protected override void CreateAdapter(AdapterMap aMap, AdapterMap bMap, string adapterName, LoraOptions options, ScalarType dtype, Device device)
    {
        var a = nn.Linear(InFeatures, options.Rank, hasBias: false, device: device, dtype: dtype);
        var b = nn.Linear(options.Rank, OutFeatures, hasBias: false, device: device, dtype: dtype);
        using (no_grad())
        {
            var aw = a.weight!;   // the modules' own parameters: never disposed here
            var bw = b.weight!;
            switch (options.Init)
            {
                case LoraInit.KaimingUniform: InPlace(nn.init.kaiming_uniform_(aw, Math.Sqrt(5)), aw); InPlace(bw.zero_(), bw); break;
                case LoraInit.Gaussian: InPlace(aw.normal_(0, 1.0 / options.Rank), aw); InPlace(bw.zero_(), bw); break;
                default: break;   // Random: a Linear's own initialisation (kaiming-uniform, a = sqrt(5)) for both
            }
        }
        aMap.AddModule(adapterName, a);
        bMap.AddModule(adapterName, b);
    }

    private protected override Parameter AdapterParameter(AdapterMap map, string adapterName) => ((Linear)map.Module(adapterName)).weight!;

    private protected override Tensor Product(Tensor a, Tensor b) => b.matmul(a);

    private protected override void CheckInput(Tensor x)
    {
        if (x.dim() == 0 || x.size(-1) != InFeatures)
            throw new ArgumentException(
                $"the LoRA linear's input must end in {InFeatures} features (its base's in_features); got shape [{string.Join(", ", x.shape)}].", nameof(x));
    }

    private protected override Tensor ForwardWithAdapter(Tensor x, Parameter a, Parameter b, LoraOptions options)
    {
        using var scope = NewDisposeScope();
        bool dropoutActive = options.Dropout > 0 && training;
        Tensor y = FusedForward && !dropoutActive && Fusable(x, a, b)
            ? LoraFusedLinearFunction.apply(x, _base.ReadWeight(), a, b, _base.Bias!, options.Scaling, _base.WeightIsCopy ? new Func<Tensor>(_base.ReadWeight) : null!)
            : Unfused(x, a, b, options, dropoutActive);
        return y.MoveToOuterDisposeScope();
    }

    // The fused node adds into the base GEMM's output in place, so everything must share the input's dtype: float32 bases with float32 adapters
    // (or adapters kept in the base dtype). Half-precision bases with float32 adapters take the unfused path, which
    // runs the LoRA branch in float32 as peft does.
    private bool Fusable(Tensor x, Tensor a, Tensor b)
        => _base.WeightDtype == x.dtype && a.dtype == x.dtype && b.dtype == x.dtype && (_base.Bias is not { } bias || bias.dtype == x.dtype);

    private Tensor Unfused(Tensor x, Tensor a, Tensor b, LoraOptions options, bool dropoutActive)
    {
        var baseOut = BaseLayer.call(x);
        var input = x.dtype == a.dtype ? x : x.to(a.dtype);                  // peft: x cast to lora_A's dtype
        if (dropoutActive) input = nn.functional.dropout(input, options.Dropout, training: true);
        var h = nn.functional.linear(input, a).reshape(-1, options.Rank);
        var acc = baseOut.reshape(-1, OutFeatures);
        if (acc.dtype != a.dtype) acc = acc.to(a.dtype);                     // the sum in the adapter's dtype ...
        var y = addmm(acc, h, b.mul(options.Scaling).t(), 1, 1).view(baseOut.shape);   // scale the small matrix (addmm's alpha is float-only)
        return y.dtype == baseOut.dtype ? y : y.to(baseOut.dtype);          // ... cast back to the base output's dtype
    }
}
