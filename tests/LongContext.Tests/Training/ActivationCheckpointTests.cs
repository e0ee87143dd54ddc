using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class ActivationCheckpointTests
{
    private sealed class Block : nn.Module<Tensor, Tensor>
    {
        private readonly Linear up;
        private readonly Linear down;
        private readonly Dropout drop;

        public Block(int width, double dropout) : base(nameof(Block))
        {
            up = nn.Linear(width, 3 * width, dtype: float64);
            down = nn.Linear(3 * width, width, dtype: float64);
            drop = nn.Dropout(dropout);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + down.forward(drop.forward(nn.functional.gelu(up.forward(x))));
    }

    private static (Tensor InputGrad, Dictionary<string, Tensor> ParamGrads, Tensor Loss) Gradients(
        Block[] blocks, Tensor input, bool checkpoint, long seed, bool preserveRng = true)
    {
        foreach (var b in blocks) b.zero_grad();
        torch.random.manual_seed(seed);
        Tensor x = input.detach().requires_grad_(true);
        Tensor h = x;
        foreach (var b in blocks)
            h = checkpoint ? ActivationCheckpoint.Run(b.forward, h, b.parameters(), preserveRng) : b.forward(h);
        Tensor loss = (h * h).sum();
        loss.backward();
        var grads = new Dictionary<string, Tensor>();
        for (int i = 0; i < blocks.Length; i++)
            foreach (var (name, p) in blocks[i].named_parameters())
                grads[$"{i}.{name}"] = p.grad is null ? torch.zeros_like(p) : p.grad.clone();
        return (x.grad!.clone(), grads, loss.detach());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    public void Gradients_EqualThoseWithoutCheckpointing_Float64(double dropout)
    {
        torch.random.manual_seed(11);
        var blocks = Enumerable.Range(0, 3).Select(_ => new Block(8, dropout)).ToArray();
        foreach (var b in blocks) b.train();
        Tensor input = torch.randn([2, 5, 8], dtype: float64);

        var plain = Gradients(blocks, input, checkpoint: false, seed: 5);
        using Tensor nextPlain = torch.rand(4, dtype: float64);
        var ckpt = Gradients(blocks, input, checkpoint: true, seed: 5);
        using Tensor nextCkpt = torch.rand(4, dtype: float64);

        TensorAssert.Close(ckpt.Loss, plain.Loss, 1e-10, "loss");
        TensorAssert.Close(ckpt.InputGrad, plain.InputGrad, 1e-10, "input gradient");
        Assert.Equal(4 * blocks.Length, plain.ParamGrads.Count);
        foreach (var (name, g) in plain.ParamGrads)
        {
            Assert.True(g.abs().sum().item<double>() > 0, $"{name}: reference gradient is zero");
            TensorAssert.Close(ckpt.ParamGrads[name], g, 1e-10, $"gradient of {name}");
        }
        // The caller's random stream continues exactly as without checkpointing.
        TensorAssert.Equal(nextCkpt, nextPlain, "random numbers drawn after backward");
    }

    [Fact]
    public void WithoutRngPreservation_DropoutMasksDiffer_SoTheEqualityTestHasTeeth()
    {
        torch.random.manual_seed(11);
        var blocks = Enumerable.Range(0, 2).Select(_ => new Block(8, 0.3)).ToArray();
        Tensor input = torch.randn([2, 5, 8], dtype: float64);
        var plain = Gradients(blocks, input, checkpoint: false, seed: 5);
        var ckpt = Gradients(blocks, input, checkpoint: true, seed: 5, preserveRng: false);
        TensorAssert.Close(ckpt.Loss, plain.Loss, 1e-10, "loss (the first pass is identical)");
        Assert.True(TensorAssert.MaxAbsDiff(ckpt.InputGrad, plain.InputGrad) > 1e-3,
            "recompute with fresh dropout masks should change the input gradient");
    }

    [Fact]
    public void FrozenInputAndFrozenParameters_OnlyTrainableParametersGetGradients()
    {
        torch.random.manual_seed(3);
        var block = new Block(6, 0.0);
        var named = block.named_parameters().ToList();
        foreach (var (name, p) in named) p.requires_grad = name.StartsWith("down", StringComparison.Ordinal);
        Tensor input = torch.randn([3, 6], dtype: float64);      // does not require grad, like frozen embeddings

        Tensor outPlain = block.forward(input);
        (outPlain * outPlain).sum().backward();
        var expected = named.Where(n => n.parameter.requires_grad).ToDictionary(n => n.name, n => n.parameter.grad!.clone());
        block.zero_grad();

        Tensor outCkpt = ActivationCheckpoint.Run(block.forward, input, block.parameters());
        Assert.True(outCkpt.requires_grad);
        (outCkpt * outCkpt).sum().backward();
        foreach (var (name, p) in named)
        {
            if (p.requires_grad) TensorAssert.Close(p.grad!, expected[name], 1e-10, $"gradient of {name}");
            else Assert.True(p.grad is null || p.grad.IsInvalid, $"{name} is frozen but got a gradient");
        }
    }

    [Fact]
    public void NoGrad_RunsBlockWithoutGraph()
    {
        var block = new Block(4, 0.0);
        Tensor input = torch.randn([2, 4], dtype: float64);
        using (torch.no_grad())
        {
            Tensor y = ActivationCheckpoint.Run(block.forward, input, block.parameters());
            Assert.False(y.requires_grad);
            TensorAssert.Close(y, block.forward(input), 0.0, "output under no_grad");
        }
    }

    [Fact]
    public void NullParameter_ThrowsNamingIt()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            ActivationCheckpoint.Run(t => t, torch.ones(2), new Tensor[] { torch.ones(1), null! }));
        Assert.Equal("parameters", ex.ParamName);
        Assert.Contains("parameters[1]", ex.Message, StringComparison.Ordinal);
    }
}
