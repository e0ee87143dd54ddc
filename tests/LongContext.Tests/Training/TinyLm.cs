using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>
/// A minimal language model for the training-loop tests (no dependency on the Llama project's files): embed_tokens
/// -> proj (Linear with bias) -> tanh -> dropout -> times norm.weight, with the embedding table as the tied head, so
/// both the hidden states and the table receive gradients through the loss. <c>frozen</c> is a parameter created
/// frozen (it is not used in forward; tests make it trainable to change the trainable set).
/// </summary>
internal sealed class TinyLm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF-style parameter names come from the field names
    private readonly Parameter frozen;
    private readonly Embedding embed_tokens;
    private readonly Linear proj;
    private readonly Dropout drop;
    private readonly Norm norm;
#pragma warning restore IDE1006

    public TinyLm(long vocab, long hidden, double dropout = 0.0, ScalarType dtype = ScalarType.Float32) : base(nameof(TinyLm))
    {
        frozen = new Parameter(torch.randn(hidden, dtype: dtype), requires_grad: false);
        embed_tokens = nn.Embedding(vocab, hidden, dtype: dtype);
        proj = nn.Linear(hidden, hidden, hasBias: true, dtype: dtype);
        drop = nn.Dropout(dropout);
        norm = new Norm(torch.rand(hidden, dtype: dtype).add_(0.5));
        RegisterComponents();
    }

    /// <summary>A parameter created with requires_grad false, unused in forward.</summary>
    public Parameter Frozen => frozen;

    /// <summary>The tied head / embedding table, read through the registered parameter.</summary>
    public Parameter HeadWeight => (Parameter)embed_tokens.get_parameter("weight")!;

    /// <summary>Last hidden states (B, N, H) of token ids (B, N).</summary>
    public Tensor Hidden(Tensor ids)
    {
        using var scope = NewDisposeScope();
        Tensor h = drop.forward(proj.forward(embed_tokens.forward(ids)).tanh()) * norm.Weight;
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>Logits (B, N, vocab).</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return Hidden(ids).matmul(HeadWeight.t()).MoveToOuterDisposeScope();
    }

    /// <summary>A module holding one 1-D parameter named <c>weight</c>.</summary>
    private sealed class Norm : nn.Module
    {
        public Norm(Tensor initial) : base("norm")
        {
            Weight = new Parameter(initial);
            register_parameter("weight", Weight);
        }

        public Parameter Weight { get; }
    }
}
