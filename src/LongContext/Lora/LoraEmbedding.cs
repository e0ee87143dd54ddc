using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// LoRA around an embedding table: <c>y = base(ids) + s · (Aᵀ[ids]) · Bᵀ</c>, with A (r, num_embeddings) and
/// B (embedding_dim, r) trainable, as peft's <c>lora.Embedding</c> (parameters <c>lora_embedding_A.&lt;adapter&gt;</c>
/// and <c>lora_embedding_B.&lt;adapter&gt;</c>). Like peft, no dropout is applied to token ids, and the rows of the
/// padding id (<see cref="EmbeddingBaseDescriptor.PaddingIdx"/>) keep their value but get no gradient.
/// </summary>
/// <remarks>Input: int64 or int32 ids of any shape (*), each in [0, num_embeddings); output (*, embedding_dim) in the table's dtype.</remarks>
public sealed class LoraEmbedding : LoraLayer
{
    private readonly EmbeddingBaseDescriptor _base;

    /// <summary>Wraps an embedding with a first adapter; the table is frozen.</summary>
    /// <param name="embedding">The embedding to adapt.</param>
    /// <param name="options">The first adapter's hyper-parameters.</param>
    /// <param name="adapterName">The first adapter's name.</param>
    /// <param name="paddingIdx">The embedding's <c>padding_idx</c>, if it was built with one (TorchSharp does not expose it).</param>
    public LoraEmbedding(Embedding embedding, LoraOptions options, string adapterName = "default", long? paddingIdx = null)
        : this(EmbeddingBaseDescriptor.Of(Guard.NotNull(embedding), paddingIdx), options, adapterName) { }

    /// <summary>Wraps a described embedding with a first adapter; the table is frozen.</summary>
    /// <param name="baseLayer">The embedding, its table and padding index.</param>
    /// <param name="options">The first adapter's hyper-parameters.</param>
    /// <param name="adapterName">The first adapter's name.</param>
    public LoraEmbedding(EmbeddingBaseDescriptor baseLayer, LoraOptions options, string adapterName = "default")
        : base(nameof(LoraEmbedding), baseLayer, "lora_embedding_A", "lora_embedding_B")
    {
        _base = baseLayer;
        AddAdapter(adapterName, options);
    }

    /// <summary>How this layer reaches its table.</summary>
    public EmbeddingBaseDescriptor Base => _base;

    /// <summary>Rows of the table.</summary>
    public long NumEmbeddings => _base.NumEmbeddings;

    /// <summary>Width of the table.</summary>
    public long EmbeddingDim => _base.EmbeddingDim;

    internal override (string A, string B) PeftKeys => ("lora_embedding_A", "lora_embedding_B");

    internal override (string A, string B) LiveKeys(string adapterName) => ($"lora_embedding_A.{adapterName}", $"lora_embedding_B.{adapterName}");

    private protected override void CreateAdapter(AdapterMap aMap, AdapterMap bMap, string adapterName, LoraOptions options, ScalarType dtype, Device device)
    {
        // The Parameters below take their own handles on these tensors; release the temporaries afterwards.
        using var a = empty(options.Rank, NumEmbeddings, dtype: dtype, device: device);
        using var b = empty(EmbeddingDim, options.Rank, dtype: dtype, device: device);
        using (no_grad())
        {
            if (options.Init == LoraInit.Random) InPlace(a.normal_(), a);   // peft without reset: A and B randn
            else InPlace(a.zero_(), a);                                      // peft's reset for every init: A zeros ...
            InPlace(b.normal_(), b);                                         // ... and B standard normal
        }
        aMap.AddParameter(adapterName, new Parameter(a));
        bMap.AddParameter(adapterName, new Parameter(b));
    }

    private protected override Parameter AdapterParameter(AdapterMap map, string adapterName) => map.Parameter(adapterName);

    private protected override Tensor Product(Tensor a, Tensor b) => b.matmul(a).t();

    private protected override void CheckInput(Tensor x)
    {
        if (x.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"token ids must be int64 or int32; got a {x.dtype} tensor of shape [{string.Join(", ", x.shape)}].", nameof(x));
        if (x.numel() == 0) return;
        using var minT = x.min();
        using var maxT = x.max();
        long min = minT.item<long>(), max = maxT.item<long>();
        if (min < 0 || max >= NumEmbeddings)
            throw new ArgumentOutOfRangeException(nameof(x), min < 0 ? min : max, $"token ids must be in [0, {NumEmbeddings}) (the table's rows); got {(min < 0 ? min : max)}.");
    }

    private protected override Tensor ForwardWithAdapter(Tensor x, Parameter a, Parameter b, LoraOptions options)
    {
        using var scope = NewDisposeScope();
        var y = BaseLayer.call(x);
        var ids = x.reshape(-1);
        var rows = a.t().index_select(0, ids);                                  // rows of Aᵀ: (N, r), the adapter's dtype
        if (_base.PaddingIdx is { } pad)                                        // F.embedding(padding_idx): value kept, no gradient
            rows = where(ids.eq(pad).unsqueeze(1), rows.detach(), rows);
        var acc = y.reshape(-1, EmbeddingDim);
        if (acc.dtype != a.dtype) acc = acc.to(a.dtype);
        var sum = addmm(acc, rows, b.mul(options.Scaling).t(), 1, 1).view(y.shape);
        return (sum.dtype == y.dtype ? sum : sum.to(y.dtype)).MoveToOuterDisposeScope();
    }
}
