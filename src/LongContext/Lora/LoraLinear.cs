using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// LoRA around a linear base layer: <c>y = base(x) + s · B(A(dropout(x)))</c>, with A (r, in) and B (out, r)
/// trainable and the base frozen. Several named adapters may be attached; one is active. The child names match
/// peft's (<c>base_layer</c>, <c>lora_A.&lt;adapter&gt;</c>, <c>lora_B.&lt;adapter&gt;</c>), so state-dict keys
/// line up with a peft model's.
/// </summary>
/// <remarks>
/// When the base weight is reachable (a TorchSharp <c>Linear</c>, or a <see cref="LoraBaseWeight"/>) and the active
/// adapter has no dropout (or the module is in eval mode), forward runs the fused formulation of
/// <see cref="FusedForward"/>; otherwise it runs the base layer and adds the rank-r product with one addmm.
/// Input (*, in) of the base's dtype; output (*, out).
/// </remarks>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>, ILoraLayer
{
    private const string BaseName = "base_layer";
    private readonly nn.Module<Tensor, Tensor> _baseLayer;
    private readonly AdapterMap _loraA = new();
    private readonly AdapterMap _loraB = new();
    private readonly LoraBaseWeight? _baseWeight;
    private readonly LoraLayerState _state = new();

    /// <summary>Wraps a base layer with a first adapter.</summary>
    /// <param name="baseLayer">The layer to adapt, mapping (*, in) to (*, out); its parameters are frozen.</param>
    /// <param name="inFeatures">in, positive.</param>
    /// <param name="outFeatures">out, positive.</param>
    /// <param name="options">The first adapter's hyper-parameters.</param>
    /// <param name="baseWeight">Dense weight access when the base is not a TorchSharp <c>Linear</c>; needed to merge.</param>
    /// <param name="adapterName">The first adapter's name (peft's default is <c>default</c>).</param>
    public LoraLinear(nn.Module<Tensor, Tensor> baseLayer, long inFeatures, long outFeatures, LoraOptions options,
                      LoraBaseWeight? baseWeight = null, string adapterName = "default")
        : base(nameof(LoraLinear))
    {
        _baseLayer = Guard.NotNull(baseLayer);
        InFeatures = Guard.Positive(inFeatures);
        OutFeatures = Guard.Positive(outFeatures);
        _baseWeight = baseWeight;
        if (baseLayer is Linear lin)
        {
            var w = lin.weight!;
            if (w.shape[0] != outFeatures || w.shape[1] != inFeatures)
                throw new ArgumentException($"base Linear weight has shape [{string.Join(", ", w.shape)}]; expected [{outFeatures}, {inFeatures}] from outFeatures and inFeatures.", nameof(baseLayer));
        }
        foreach (var p in baseLayer.parameters()) p.requires_grad = false;
        RegisterComponents();
        AddAdapter(adapterName, options);
    }

    /// <summary>Wraps a TorchSharp <c>Linear</c>, reading in/out from its weight.</summary>
    /// <param name="linear">The layer to adapt.</param>
    /// <param name="options">The adapter's hyper-parameters.</param>
    /// <param name="adapterName">The adapter's name.</param>
    public static LoraLinear Wrap(Linear linear, LoraOptions options, string adapterName = "default")
    {
        ArgumentNullException.ThrowIfNull(linear);
        var w = linear.weight!;   // TorchSharp returns the module's own Parameter: never dispose it
        return new LoraLinear(linear, w.shape[1], w.shape[0], options, null, adapterName);
    }

    /// <summary>Input features (the base weight's second dimension).</summary>
    public long InFeatures { get; }

    /// <summary>Output features (the base weight's first dimension).</summary>
    public long OutFeatures { get; }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> BaseLayer => _baseLayer;

    /// <inheritdoc />
    public IReadOnlyList<string> AdapterNames => _state.Names;

    /// <inheritdoc />
    public string ActiveAdapter => _state.Active;

    /// <inheritdoc />
    public bool Merged => _state.MergedAdapter is not null;

    /// <inheritdoc />
    public bool AdapterEnabled { get => _state.Enabled; set => _state.SetEnabled(value); }

    /// <summary>
    /// Use the fused formulation when possible (default true): one GEMM of x against [W; A] and an in-place
    /// accumulation of the input gradient. Set false for peft's three-linears formulation's memory profile (the
    /// fused autograd node keeps one output-sized buffer per call).
    /// </summary>
    public bool FusedForward { get; set; } = true;

    /// <inheritdoc />
    public LoraOptions GetOptions(string adapterName) => _state.Options(adapterName);

    /// <inheritdoc />
    public void AddAdapter(string adapterName, LoraOptions options)
    {
        _state.Add(adapterName, options);
        var (dtype, device) = BaseDtypeAndDevice();
        var a = nn.Linear(InFeatures, options.Rank, hasBias: false, device: device, dtype: dtype);
        var b = nn.Linear(options.Rank, OutFeatures, hasBias: false, device: device, dtype: dtype);
        using (no_grad())
        {
            var aw = a.weight!;
            var bw = b.weight!;
            switch (options.Init)
            {
                case LoraInit.KaimingUniform: InPlace(nn.init.kaiming_uniform_(aw, Math.Sqrt(5)), aw); InPlace(bw.zero_(), bw); break;
                case LoraInit.Gaussian: InPlace(aw.normal_(0, 1.0 / options.Rank), aw); InPlace(bw.zero_(), bw); break;
                default: InPlace(aw.zero_(), aw); InPlace(bw.zero_(), bw); break;
            }
        }
        _loraA.AddModule(adapterName, a);
        _loraB.AddModule(adapterName, b);
        UpdateTrainable();
    }

    /// <inheritdoc />
    public void SetActiveAdapter(string adapterName)
    {
        _state.SetActive(adapterName);
        UpdateTrainable();
    }

    /// <inheritdoc />
    public Parameter LoraA(string adapterName)
    {
        _ = _state.Options(adapterName);
        return ((Linear)_loraA.Module(adapterName)).weight!;
    }

    /// <inheritdoc />
    public Parameter LoraB(string adapterName)
    {
        _ = _state.Options(adapterName);
        return ((Linear)_loraB.Module(adapterName)).weight!;
    }

    /// <inheritdoc />
    /// <returns>s · B·A, shape (out, in), in A's dtype.</returns>
    public Tensor DeltaWeight() => DeltaWeight(_state.Active);

    private Tensor DeltaWeight(string adapterName)
    {
        var o = _state.Options(adapterName);
        var a = LoraA(adapterName);
        var b = LoraB(adapterName);
        using var scope = NewDisposeScope();
        return b.matmul(a).mul_(o.Scaling).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">An adapter is already merged, or adapters are disabled.</exception>
    /// <exception cref="NotSupportedException">The base is not a <c>Linear</c> and no <see cref="LoraBaseWeight"/> was given.</exception>
    public void Merge()
    {
        _state.BeginMerge();
        AddToBaseWeight(_state.Active, sign: +1);
        _state.MergedAdapter = _state.Active;
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">No adapter is merged.</exception>
    public void Unmerge()
    {
        string merged = _state.BeginUnmerge();
        AddToBaseWeight(merged, sign: -1);
        _state.MergedAdapter = null;
    }

    /// <summary>Applies the base layer plus the active adapter (unless merged or disabled).</summary>
    /// <param name="x">Input (*, in).</param>
    /// <returns>Output (*, out).</returns>
    public override Tensor forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!_state.Enabled || Merged) return _baseLayer.call(x);
        var o = _state.ActiveOptions;
        using var scope = NewDisposeScope();
        var a = LoraA(_state.Active);
        var b = LoraB(_state.Active);
        bool dropoutActive = o.Dropout > 0 && training;
        Tensor y;
        if (FusedForward && !dropoutActive && TryDenseWeight(out var w, out var bias, out var reader)
            && w.dtype == x.dtype && a.dtype == x.dtype && b.dtype == x.dtype)
        {
            y = LoraFusedLinearFunction.apply(x, w, a, b, bias!, o.Scaling, reader!);
        }
        else
        {
            var baseOut = _baseLayer.call(x);
            var input = dropoutActive ? nn.functional.dropout(x, o.Dropout, training: true) : x;
            if (input.dtype != a.dtype) input = input.to(a.dtype);
            var h = nn.functional.linear(input, a).reshape(-1, o.Rank);
            if (h.dtype != baseOut.dtype) h = h.to(baseOut.dtype);
            var bs = b.mul(o.Scaling);                                  // scale the small matrix (addmm's alpha is float-only)
            if (bs.dtype != baseOut.dtype) bs = bs.to(baseOut.dtype);
            y = addmm(baseOut.reshape(-1, OutFeatures), h, bs.t(), 1, 1).view(baseOut.shape);
        }
        return y.MoveToOuterDisposeScope();
    }

    private bool TryDenseWeight(out Tensor w, out Tensor? bias, out Func<Tensor>? reader)
    {
        if (_baseWeight is not null)
        {
            w = _baseWeight.Read();
            bias = null;
            reader = _baseWeight.Read;
            // The base's own bias (if any) is unknown here: use the unfused path unless the base has none.
            return !_baseLayer.parameters().Any(p => p.shape.Length == 1);
        }
        if (_baseLayer is Linear lin)
        {
            w = lin.weight!;
            bias = lin.bias;
            reader = null;
            return true;
        }
        w = null!;
        bias = null;
        reader = null;
        return false;
    }

    private void AddToBaseWeight(string adapterName, int sign)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var delta = DeltaWeight(adapterName);
        if (_baseWeight is not null)
        {
            var w = _baseWeight.Read();
            _baseWeight.Write(w.add(delta.to(w.dtype), alpha: sign));
        }
        else if (_baseLayer is Linear lin)
        {
            var w = lin.weight!;
            w.add_(delta.to(w.dtype), alpha: sign);
        }
        else
        {
            throw new NotSupportedException($"the base layer is a {_baseLayer.GetType().Name}, whose dense weight is unknown; construct the LoraLinear with a {nameof(LoraBaseWeight)} to merge.");
        }
    }

    // TorchSharp's in-place ops may return a second handle to the same storage; release it now rather than at
    // finalization (a live native handle per call otherwise).
    internal static void InPlace(Tensor result, Tensor target)
    {
        if (!ReferenceEquals(result, target)) result.Dispose();
    }

    private (ScalarType, Device) BaseDtypeAndDevice()
    {
        if (_baseWeight is not null)
        {
            using var w = _baseWeight.Read();
            return (w.dtype, w.device);
        }
        var p = _baseLayer.parameters().FirstOrDefault(t => t.is_floating_point());
        return p is null ? (get_default_dtype(), CPU) : (p.dtype, p.device);
    }

    private void UpdateTrainable()
    {
        foreach (string name in _state.Names)
        {
            bool active = name == _state.Active;
            foreach (var p in _loraA.Module(name).parameters()) p.requires_grad = active;
            foreach (var p in _loraB.Module(name).parameters()) p.requires_grad = active;
        }
    }

    /// <summary>Registers the children under peft's names.</summary>
    protected override void RegisterComponents()
    {
        if (_registered) return;
        register_module(BaseName, _baseLayer);
        register_module("lora_A", _loraA);
        register_module("lora_B", _loraB);
        _registered = true;
    }

    private bool _registered;
}
