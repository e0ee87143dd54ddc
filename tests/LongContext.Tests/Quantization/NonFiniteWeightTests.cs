using LongContext.Quantization;
using LongContext.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LongContext.Tests.Quantization;

/// <summary>A weight holding NaN or an infinity is refused with an error naming the tensor, never quantized into NaN.</summary>
[Trait(Category.Name, Category.Quantization)]
public sealed class NonFiniteWeightTests
{
    /// <summary>(row name, the bad value, how the message names it).</summary>
    public static TheoryData<string, float, string> BadValues() => new()
    {
        { "NaN", float.NaN, "NaN" },
        { "positive infinity", float.PositiveInfinity, "+Infinity" },
        { "negative infinity", float.NegativeInfinity, "-Infinity" },
    };

    private sealed class TwoLayers : Module<Tensor, Tensor>
    {
        private Module<Tensor, Tensor> up_proj;
        private Module<Tensor, Tensor> down_proj;
        public TwoLayers() : base(nameof(TwoLayers))
        {
            up_proj = Linear(64, 128, hasBias: false);
            down_proj = Linear(128, 64, hasBias: false);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => down_proj.forward(up_proj.forward(x));
    }

    private sealed class Model : Module<Tensor, Tensor>
    {
        private TwoLayers mlp;
        public Model() : base(nameof(Model)) { mlp = new TwoLayers(); RegisterComponents(); }
        public override Tensor forward(Tensor x) => mlp.forward(x);
    }

    [Theory]
    [MemberData(nameof(BadValues))]
    public void Blockwise4BitQuantize_NamesTheParameterIndexAndValue(string row, float bad, string shown)
    {
        _ = row; // names the row
        using var scope = NewDisposeScope();
        var w = randn(new long[] { 8, 96 }, generator: new Generator(1));
        w[5, 17] = tensor(bad);
        w[6, 3] = tensor(bad);
        var e = Assert.Throws<ArgumentException>(() => Blockwise4Bit.Quantize(w, QuantType.Nf4, 64, doubleQuant: true));
        Assert.Equal("x", e.ParamName);
        Assert.Contains(shown, e.Message);
        Assert.Contains("[5, 17]", e.Message); // the first one, row-major
        Assert.Contains("[8, 96]", e.Message);
    }

    [Theory]
    [MemberData(nameof(BadValues))]
    public void Blockwise4BitQuantize_HalfPrecisionInput_NamesTheValue(string row, float bad, string shown)
    {
        _ = row; // names the row
        using var scope = NewDisposeScope();
        var w = randn(new long[] { 128 }, generator: new Generator(2)).to(ScalarType.BFloat16);
        w[100] = tensor(bad).to(ScalarType.BFloat16);
        var e = Assert.Throws<ArgumentException>(() => Blockwise4Bit.Quantize(w, QuantType.Fp4, 32));
        Assert.Contains(shown, e.Message);
        Assert.Contains("[100]", e.Message);
    }

    [Theory]
    [MemberData(nameof(BadValues))]
    public void ModelQuantizer_NamesTheParameterPath_AndLeavesTheModelUnchanged(string row, float bad, string shown)
    {
        _ = row; // names the row
        using var model = new Model();
        using (no_grad()) model.get_parameter("mlp.down_proj.weight")![3, 4] = tensor(bad);
        var e = Assert.Throws<ArgumentException>(() => ModelQuantizer.Quantize(model));
        Assert.Equal("root", e.ParamName);
        Assert.Contains("'mlp.down_proj.weight'", e.Message);
        Assert.Contains(shown, e.Message);
        Assert.Contains("[3, 4]", e.Message);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        Assert.IsType<Linear>(modules["mlp.up_proj"]);   // checked before any layer changed
        Assert.IsType<Linear>(modules["mlp.down_proj"]);
    }

    [Theory]
    [MemberData(nameof(BadValues))]
    public void Linear4BitFromLinear_NamesTheLinearsWeight(string row, float bad, string shown)
    {
        _ = row; // names the row
        using var dense = Linear(64, 16);
        using (no_grad()) dense.weight![0, 63] = tensor(bad);
        var e = Assert.Throws<ArgumentException>(() => Linear4Bit.FromLinear(dense));
        Assert.Equal("linear", e.ParamName);
        Assert.Contains("'linear.weight'", e.Message);
        Assert.Contains(shown, e.Message);
    }

    [Theory]
    [MemberData(nameof(BadValues))]
    public void Linear4BitMergeDelta_NamesTheDelta_AndKeepsTheWeight(string row, float bad, string shown)
    {
        _ = row; // names the row
        using var scope = NewDisposeScope();
        using var dense = Linear(64, 16);
        using var q = Linear4Bit.FromLinear(dense);
        var before = q.State.Packed.clone();
        var delta = zeros(16, 64);
        delta[2, 2] = tensor(bad);
        var e = Assert.Throws<ArgumentException>(() => q.MergeDelta(delta));
        Assert.Equal("delta", e.ParamName);
        Assert.Contains(shown, e.Message);
        TensorAssert.Equal(q.State.Packed, before, "codes after a refused merge");
    }
}
