using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// An embedding table as <see cref="LoraEmbedding"/> reaches it: the table (read through the registered parameter;
/// TorchSharp's <c>Embedding.weight</c> getter would return a new native handle per call), its sizes and the padding
/// index, which TorchSharp's <c>Embedding</c> does not expose and the caller states (HF's <c>padding_idx</c>, from
/// <c>pad_token_id</c>).
/// </summary>
public sealed class EmbeddingBaseDescriptor : LoraBaseDescriptor
{
    private readonly Embedding _embedding;

    private EmbeddingBaseDescriptor(Embedding embedding, long? paddingIdx) : base(embedding)
    {
        _embedding = embedding;
        NumEmbeddings = Table.shape[0];
        EmbeddingDim = Table.shape[1];
        if (paddingIdx is { } p && (p < 0 || p >= NumEmbeddings))
            throw new ArgumentOutOfRangeException(nameof(paddingIdx), p, $"paddingIdx must be in [0, {NumEmbeddings}) (the table's rows); got {p}.");
        PaddingIdx = paddingIdx;
    }

    /// <summary>Describes an embedding.</summary>
    /// <param name="embedding">The table to adapt.</param>
    /// <param name="paddingIdx">
    /// The row the embedding was built with as <c>padding_idx</c>, or null. As in peft, the LoRA rows for this id get no
    /// gradient (the lookup keeps their value).
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="paddingIdx"/> is not a row of the table.</exception>
    public static EmbeddingBaseDescriptor Of(Embedding embedding, long? paddingIdx = null) => new(Guard.NotNull(embedding), paddingIdx);

    /// <summary>Rows of the table (vocabulary size).</summary>
    public long NumEmbeddings { get; }

    /// <summary>Width of the table.</summary>
    public long EmbeddingDim { get; }

    /// <summary>The padding row, or null.</summary>
    public long? PaddingIdx { get; }

    /// <summary>The table, shape (num_embeddings, embedding_dim): the embedding's registered parameter (never disposed by callers).</summary>
    public Parameter Table => _embedding.named_parameters(recurse: false).First(p => p.name == "weight").parameter;

    /// <inheritdoc />
    public override ScalarType WeightDtype => Table.dtype;

    /// <inheritdoc />
    public override Device Device => Table.device;

    /// <inheritdoc />
    public override void AddToWeight(Tensor delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var table = Table;
        table.add_(delta.to(table.device));
    }
}
