using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// LoRA around an embedding table: <c>y = base(ids) + s · (Aᵀ[ids]) · Bᵀ</c>, with A (r, num_embeddings) and
/// B (embedding_dim, r) trainable, as peft's <c>lora.Embedding</c> (parameters <c>lora_embedding_A.&lt;adapter&gt;</c>
/// and <c>lora_embedding_B.&lt;adapter&gt;</c>). Like peft, no dropout is applied to token ids.
/// </summary>
/// <remarks>Input: int64 ids of any shape (*); output (*, embedding_dim).</remarks>
public sealed class LoraEmbedding : nn.Module<Tensor, Tensor>, ILoraLayer
{
    private readonly Embedding _baseLayer;
    private readonly AdapterMap _loraA = new();
    private readonly AdapterMap _loraB = new();
    private readonly LoraLayerState _state = new();

    /// <summary>Wraps an embedding with a first adapter; the table is frozen.</summary>
    /// <param name="embedding">The embedding to adapt.</param>
    /// <param name="options">The first adapter's hyper-parameters.</param>
    /// <param name="adapterName">The first adapter's name.</param>
    public LoraEmbedding(Embedding embedding, LoraOptions options, string adapterName = "default") : base(nameof(LoraEmbedding))
    {
        _baseLayer = Guard.NotNull(embedding);
        var w0 = TableOf(embedding);
        NumEmbeddings = w0.shape[0];
        EmbeddingDim = w0.shape[1];
        foreach (var p in embedding.parameters()) p.requires_grad = false;
        RegisterComponents();
        AddAdapter(adapterName, options);
    }

    /// <summary>Rows of the table.</summary>
    public long NumEmbeddings { get; }

    /// <summary>Width of the table.</summary>
    public long EmbeddingDim { get; }

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

    /// <inheritdoc />
    public LoraOptions GetOptions(string adapterName) => _state.Options(adapterName);

    /// <inheritdoc />
    public void AddAdapter(string adapterName, LoraOptions options)
    {
        _state.Add(adapterName, options);
        var w = TableOf(_baseLayer);
        // The Parameters below take their own handles on these tensors; release the temporaries afterwards.
        using var a = zeros(options.Rank, NumEmbeddings, dtype: w.dtype, device: w.device);
        using var b = zeros(EmbeddingDim, options.Rank, dtype: w.dtype, device: w.device);
        switch (options.Init)
        {
            case LoraInit.KaimingUniform: LoraLinear.InPlace(b.normal_(), b); break;                      // peft: A zeros, B normal
            case LoraInit.Gaussian: LoraLinear.InPlace(a.normal_(0, 1.0 / options.Rank), a); break;       // peft: A normal(1/r), B zeros
        }
        _loraA.AddParameter(adapterName, new Parameter(a));
        _loraB.AddParameter(adapterName, new Parameter(b));
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
        return _loraA.Parameter(adapterName);
    }

    /// <inheritdoc />
    public Parameter LoraB(string adapterName)
    {
        _ = _state.Options(adapterName);
        return _loraB.Parameter(adapterName);
    }

    /// <inheritdoc />
    /// <returns>s · (B·A)ᵀ, shape (num_embeddings, embedding_dim).</returns>
    public Tensor DeltaWeight() => DeltaWeight(_state.Active);

    private Tensor DeltaWeight(string adapterName)
    {
        var o = _state.Options(adapterName);
        using var scope = NewDisposeScope();
        return LoraB(adapterName).matmul(LoraA(adapterName)).t().mul(o.Scaling).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">An adapter is already merged, or adapters are disabled.</exception>
    public void Merge()
    {
        _state.BeginMerge();
        AddToTable(_state.Active, +1);
        _state.MergedAdapter = _state.Active;
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">No adapter is merged.</exception>
    public void Unmerge()
    {
        string merged = _state.BeginUnmerge();
        AddToTable(merged, -1);
        _state.MergedAdapter = null;
    }

    /// <summary>Looks up the ids and adds the active adapter's rows (unless merged or disabled).</summary>
    /// <param name="x">int64 ids (*).</param>
    /// <returns>(*, embedding_dim).</returns>
    public override Tensor forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!_state.Enabled || Merged) return _baseLayer.call(x);
        var o = _state.ActiveOptions;
        using var scope = NewDisposeScope();
        var y = _baseLayer.call(x);
        var a = LoraA(_state.Active);
        var b = LoraB(_state.Active);
        var delta = a.t().index_select(0, x.reshape(-1));                          // rows of Aᵀ: (N, r)
        return addmm(y.reshape(-1, EmbeddingDim), delta, b.mul(o.Scaling).t(), 1, 1).view(y.shape).MoveToOuterDisposeScope();
    }

    private void AddToTable(string adapterName, int sign)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = TableOf(_baseLayer);
        w.add_(DeltaWeight(adapterName).to(w.dtype), alpha: sign);
    }

    // TorchSharp 0.107's Embedding.weight getter returns a new native handle on every call (never released before
    // finalization); the registered parameter object is the module's own and costs nothing to look up.
    private static Parameter TableOf(Embedding embedding)
        => embedding.named_parameters(recurse: false).First(p => p.name == "weight").parameter;

    private void UpdateTrainable()
    {
        foreach (string name in _state.Names)
        {
            bool active = name == _state.Active;
            _loraA.Parameter(name).requires_grad = active;
            _loraB.Parameter(name).requires_grad = active;
        }
    }

    /// <summary>Registers the children under peft's names.</summary>
    protected override void RegisterComponents()
    {
        if (_registered) return;
        register_module("base_layer", _baseLayer);
        register_module("lora_embedding_A", _loraA);
        register_module("lora_embedding_B", _loraB);
        _registered = true;
    }

    private bool _registered;
}
