using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// What every LoRA layer shares (<see cref="LoraLinear"/>, <see cref="LoraEmbedding"/>): a frozen base layer reached
/// through its <see cref="LoraBaseDescriptor"/>, one or more named adapters with one active, merge and unmerge into
/// the base weight, and an on/off switch. Children carry peft's names (<c>base_layer</c> and the adapter maps), so
/// state-dict keys line up with a peft model's.
/// </summary>
/// <remarks>
/// Adapter dtype: float32 over a float16/bfloat16 base unless <see cref="LoraOptions.AutocastAdapterDtype"/> is false,
/// otherwise the base weight's dtype. The LoRA branch runs in the adapter's dtype and the sum is cast to the base
/// output's dtype, as peft's forward does. <c>module.to(dtype)</c> converts adapters like any other parameter.
/// </remarks>
public abstract class LoraLayer : nn.Module<Tensor, Tensor>, IFixedChildren
{
    private const string BaseName = "base_layer";
    private readonly LoraBaseDescriptor _base;
    private readonly string _aMapName;
    private readonly string _bMapName;
    private AdapterMap _loraA = new();
    private AdapterMap _loraB = new();
    private readonly List<string> _names = [];
    private readonly Dictionary<string, LoraOptions> _options = new(StringComparer.Ordinal);
    private string _active = "";
    private string? _merged;
    private bool _enabled = true;
    private bool _registered;

    private protected LoraLayer(string name, LoraBaseDescriptor baseLayer, string aMapName, string bMapName) : base(name)
    {
        _base = Guard.NotNull(baseLayer);
        _aMapName = aMapName;
        _bMapName = bMapName;
        foreach (var p in baseLayer.Module.parameters()) p.requires_grad = false;
        RegisterComponents();
    }

    /// <summary>Why the base layer cannot be swapped under the layer (for the module-tree replacement, e.g. quantization).</summary>
    string IFixedChildren.FixedChildrenReason =>
        "which reaches its base layer through the descriptor it was built with and would keep running the old layer; " +
        "replace or quantize layers before injecting LoRA (for 4-bit bases: ModelQuantizer.Quantize, then QLora.Inject).";

    /// <summary>The wrapped (frozen) layer; registered as the child <c>base_layer</c>, as in peft.</summary>
    public nn.Module<Tensor, Tensor> BaseLayer => _base.Module;

    /// <summary>Names of the adapters this layer holds, in the order they were added.</summary>
    public IReadOnlyList<string> AdapterNames => _names;

    /// <summary>The adapter used by forward, merge and <see cref="DeltaWeight()"/>.</summary>
    public string ActiveAdapter => _active;

    /// <summary>Whether the active adapter is currently added into the base weight.</summary>
    public bool Merged => _merged is not null;

    /// <summary>When false, forward returns the base layer's output alone.</summary>
    /// <exception cref="InvalidOperationException">Set to a new value while an adapter is merged.</exception>
    public bool AdapterEnabled
    {
        get => _enabled;
        set
        {
            if (value != _enabled && _merged is not null)
                throw new InvalidOperationException($"adapter '{_merged}' is merged; unmerge it before enabling or disabling adapters.");
            _enabled = value;
        }
    }

    /// <summary>The options an adapter was created with.</summary>
    /// <param name="adapterName">An adapter this layer holds.</param>
    /// <exception cref="ArgumentException">The layer holds no such adapter.</exception>
    public LoraOptions GetOptions(string adapterName)
        => _options.TryGetValue(Guard.NotNull(adapterName), out var o)
            ? o
            : throw new ArgumentException($"adapter '{adapterName}' is not present; this layer holds [{string.Join(", ", _names)}].", nameof(adapterName));

    /// <summary>
    /// Adds a new adapter, initialised per <see cref="LoraOptions.Init"/>, in the dtype the options and the base
    /// give; the first adapter becomes the active one, later ones do not.
    /// </summary>
    /// <param name="adapterName">A new name without dots.</param>
    /// <param name="options">Its hyper-parameters.</param>
    /// <exception cref="ArgumentException">The name is empty, holds a dot, or is already present.</exception>
    public void AddAdapter(string adapterName, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(adapterName) || adapterName.Contains('.'))
            throw new ArgumentException($"adapter name must be non-empty and without dots; got '{adapterName}'.", nameof(adapterName));
        if (_options.ContainsKey(adapterName))
            throw new ArgumentException($"adapter '{adapterName}' is already present.", nameof(adapterName));
        ScalarType baseDtype = _base.WeightDtype;
        ScalarType dtype = options.AutocastAdapterDtype && baseDtype is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : baseDtype;
        CreateAdapter(_loraA, _loraB, adapterName, options, dtype, _base.Device);
        _options.Add(adapterName, options);
        _names.Add(adapterName);
        if (_names.Count == 1) _active = adapterName;
        UpdateTrainable();
    }

    /// <summary>
    /// Takes back an adapter <see cref="AddAdapter"/> added (the undo of a load that failed after injecting): its A and
    /// B are disposed and the layer is as before the add. A removed active adapter passes the role to the first one left.
    /// </summary>
    /// <exception cref="InvalidOperationException">The adapter is merged.</exception>
    internal void RemoveAdapter(string adapterName)
    {
        _ = GetOptions(adapterName);
        if (_merged == adapterName) throw new InvalidOperationException($"adapter '{adapterName}' is merged; unmerge it before removing it.");
        _loraA = Without(_loraA, _aMapName, adapterName);
        _loraB = Without(_loraB, _bMapName, adapterName);
        _options.Remove(adapterName);
        _names.Remove(adapterName);
        if (_active == adapterName) _active = _names.FirstOrDefault() ?? "";
        UpdateTrainable();
    }

    /// <summary>A copy of <paramref name="map"/> without one adapter (whose module or parameter is disposed), registered in its place.</summary>
    private AdapterMap Without(AdapterMap map, string mapName, string adapterName)
    {
        var kept = new AdapterMap();
        foreach (var (name, module) in map.named_children())
            if (name == adapterName) module.Dispose(); else kept.AddModule(name, module);
        foreach (var (name, parameter) in map.named_parameters(recurse: false))
            if (name == adapterName) parameter.Dispose(); else kept.AddParameter(name, parameter);
        _internal_submodules[mapName] = kept;      // the old map is dropped, not disposed: it still lists the kept adapters
        return kept;
    }

    /// <summary>Makes an adapter the active one; only its A and B require gradients afterwards.</summary>
    /// <param name="adapterName">An adapter this layer holds.</param>
    /// <exception cref="ArgumentException">The layer holds no such adapter.</exception>
    /// <exception cref="InvalidOperationException">Another adapter is merged.</exception>
    public void SetActiveAdapter(string adapterName)
    {
        _ = GetOptions(adapterName);
        if (_merged is not null && _merged != adapterName)
            throw new InvalidOperationException($"adapter '{_merged}' is merged; unmerge it before activating '{adapterName}'.");
        _active = adapterName;
        UpdateTrainable();
    }

    /// <summary>The A matrix of an adapter: (r, in) for Linear, (r, num_embeddings) for Embedding.</summary>
    /// <param name="adapterName">An adapter this layer holds.</param>
    public Parameter LoraA(string adapterName)
    {
        _ = GetOptions(adapterName);
        return AdapterParameter(_loraA, adapterName);
    }

    /// <summary>The B matrix of an adapter: (out, r) for Linear, (embedding_dim, r) for Embedding.</summary>
    /// <param name="adapterName">An adapter this layer holds.</param>
    public Parameter LoraB(string adapterName)
    {
        _ = GetOptions(adapterName);
        return AdapterParameter(_loraB, adapterName);
    }

    /// <summary>The active adapter's weight change in the base weight's layout, scaling included, in the adapter's dtype.</summary>
    /// <returns>A new tensor: s·B·A (out, in) for Linear, s·(B·A)ᵀ (num_embeddings, embedding_dim) for Embedding.</returns>
    public Tensor DeltaWeight() => DeltaWeight(_active);

    /// <summary>Adds the active adapter into the base weight (through the base descriptor).</summary>
    /// <exception cref="InvalidOperationException">An adapter is already merged, or adapters are disabled.</exception>
    /// <exception cref="NotSupportedException">The base cannot be written.</exception>
    public void Merge()
    {
        if (_merged is not null)
            throw new InvalidOperationException($"adapter '{_merged}' is already merged; merging twice would add it twice. Call Unmerge first.");
        if (!_enabled) throw new InvalidOperationException("adapters are disabled; enable them before merging.");
        using var noGrad = no_grad();
        using var delta = DeltaWeight(_active);
        _base.AddToWeight(delta);
        _merged = _active;
    }

    /// <summary>Subtracts the merged adapter from the base weight again.</summary>
    /// <exception cref="InvalidOperationException">No adapter is merged.</exception>
    public void Unmerge()
    {
        string merged = _merged ?? throw new InvalidOperationException("no adapter is merged; nothing to unmerge.");
        using var noGrad = no_grad();
        using var delta = DeltaWeight(merged);
        using var negated = delta.neg();
        _base.AddToWeight(negated);
        _merged = null;
    }

    /// <summary>The base layer's output plus the active adapter's (the base's alone when merged or disabled).</summary>
    /// <param name="x">The base layer's input; see the layer's remarks for the shape.</param>
    /// <exception cref="ArgumentException">The input does not fit the layer (the message states the value and what was expected).</exception>
    public sealed override Tensor forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        CheckInput(x);
        if (!_enabled || _merged is not null) return BaseLayer.call(x);
        return ForwardWithAdapter(x, LoraA(_active), LoraB(_active), _options[_active]);
    }

    /// <summary>The state-dict key suffixes peft saves an adapter's A and B under (the adapter name removed).</summary>
    internal abstract (string A, string B) PeftKeys { get; }

    /// <summary>The live state-dict key suffixes of an adapter's A and B.</summary>
    internal abstract (string A, string B) LiveKeys(string adapterName);

    private protected abstract void CreateAdapter(AdapterMap a, AdapterMap b, string adapterName, LoraOptions options, ScalarType dtype, Device device);

    private protected abstract Parameter AdapterParameter(AdapterMap map, string adapterName);

    /// <summary>B·A in the base weight's layout, unscaled.</summary>
    private protected abstract Tensor Product(Tensor a, Tensor b);

    private protected abstract void CheckInput(Tensor x);

    private protected abstract Tensor ForwardWithAdapter(Tensor x, Parameter a, Parameter b, LoraOptions options);

    private Tensor DeltaWeight(string adapterName)
    {
        double s = GetOptions(adapterName).Scaling;
        using var scope = NewDisposeScope();
        return Product(LoraA(adapterName), LoraB(adapterName)).mul(s).MoveToOuterDisposeScope();
    }

    private void UpdateTrainable()
    {
        foreach (string name in _names)
        {
            bool active = name == _active;
            LoraA(name).requires_grad = active;
            LoraB(name).requires_grad = active;
        }
    }

    // TorchSharp's in-place ops may return a second handle to the same storage; release it now rather than at
    // finalization (a live native handle per call otherwise).
    private protected static void InPlace(Tensor result, Tensor target)
    {
        if (!ReferenceEquals(result, target)) result.Dispose();
    }

    /// <summary>Registers the children under peft's names.</summary>
    protected sealed override void RegisterComponents()
    {
        if (_registered) return;
        register_module(BaseName, _base.Module);
        register_module(_aMapName, _loraA);
        register_module(_bMapName, _loraB);
        _registered = true;
    }
}
