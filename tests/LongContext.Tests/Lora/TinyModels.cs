using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

/// <summary>A two-projection block whose fields are declared as Module&lt;Tensor, Tensor&gt;, as LoRA injection needs.</summary>
internal sealed class TinyAttention : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF names
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;
#pragma warning restore IDE1006

    public TinyAttention(long dim, ScalarType dtype) : base(nameof(TinyAttention))
    {
        q_proj = nn.Linear(dim, dim, hasBias: true, dtype: dtype);
        v_proj = nn.Linear(dim, dim, hasBias: false, dtype: dtype);
        o_proj = nn.Linear(dim, dim, hasBias: false, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => o_proj.call(q_proj.call(x) * v_proj.call(x));
}

/// <summary>embed_tokens -> layers.{i}.self_attn -> norm -> lm_head, names as in HF Llama.</summary>
internal sealed class TinyModel : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly ModuleList<TinyLayer> layers = new();
    private nn.Module<Tensor, Tensor> norm;
    private nn.Module<Tensor, Tensor> lm_head;
#pragma warning restore IDE1006

    public TinyModel(long vocab, long dim, int nLayers, ScalarType dtype = ScalarType.Float32) : base(nameof(TinyModel))
    {
        embed_tokens = nn.Embedding(vocab, dim, dtype: dtype);
        for (int i = 0; i < nLayers; i++) layers.Add(new TinyLayer(dim, dtype));
        norm = nn.LayerNorm(dim, dtype: dtype);
        lm_head = nn.Linear(dim, vocab, hasBias: false, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        var h = embed_tokens.call(ids);
        foreach (var l in layers) h = l.call(h);
        return lm_head.call(norm.call(h));
    }
}

/// <summary>A model one level down: <c>inner.*</c>, as when a recipe wraps the model it was given.</summary>
internal sealed class OuterModel : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly TinyModel inner;
#pragma warning restore IDE1006

    public OuterModel(TinyModel model) : base(nameof(OuterModel))
    {
        inner = model;
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids) => inner.call(ids);
}

internal sealed class TinyLayer : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly TinyAttention self_attn;
    private nn.Module<Tensor, Tensor> input_layernorm;
#pragma warning restore IDE1006

    public TinyLayer(long dim, ScalarType dtype) : base(nameof(TinyLayer))
    {
        self_attn = new TinyAttention(dim, dtype);
        input_layernorm = nn.LayerNorm(dim, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x + self_attn.call(input_layernorm.call(x));
}

/// <summary>A parent that declares its child as Linear, which a LoraLinear cannot replace.</summary>
internal sealed class RigidParent : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly Linear q_proj;
#pragma warning restore IDE1006

    public RigidParent() : base(nameof(RigidParent))
    {
        q_proj = nn.Linear(4, 4);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => q_proj.call(x);
}

/// <summary>A swappable k_proj first, then a q_proj held in a field declared as Linear.</summary>
internal sealed class HalfRigidParent : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private nn.Module<Tensor, Tensor> k_proj;
    private readonly Linear q_proj;
#pragma warning restore IDE1006

    public HalfRigidParent() : base(nameof(HalfRigidParent))
    {
        k_proj = nn.Linear(4, 4);
        q_proj = nn.Linear(4, 4);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => q_proj.call(k_proj.call(x));
}

/// <summary>A module tree with given names and shapes, built from a checkpoint's tensor list (no forward).</summary>
internal sealed class StandInNode : nn.Module<Tensor, Tensor>
{
    public StandInNode() : base(nameof(StandInNode)) { }

    public override Tensor forward(Tensor x) => throw new NotSupportedException("stand-in tree for names and shapes only");

    public StandInNode Child(string name)
    {
        foreach (var (n, m) in named_children()) if (n == name) return (StandInNode)m;
        var c = new StandInNode();
        register_module(name, c);
        return c;
    }

    public void Put(string name, nn.Module module) => register_module(name, module);

    public void PutParameter(string name, Tensor value) => register_parameter(name, new Parameter(value));

    /// <summary>Linear for 2-D "X.weight" tensors, Embedding for names containing "embed", a parameter otherwise.</summary>
    public static StandInNode FromCheckpoint(IReadOnlyDictionary<string, long[]> shapes)
    {
        var root = new StandInNode();
        foreach (var (key, shape) in shapes.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            string[] parts = key.Split('.');
            var node = root;
            for (int i = 0; i < parts.Length - 2; i++) node = node.Child(parts[i]);
            string module = parts[^2], param = parts[^1];
            if (param == "weight" && shape.Length == 2)
                node.Put(module, module.Contains("embed", StringComparison.Ordinal)
                    ? nn.Embedding(shape[0], shape[1])
                    : nn.Linear(shape[1], shape[0], hasBias: false));
            else
                node.Child(module).PutParameter(param, zeros(shape));
        }
        return root;
    }
}
