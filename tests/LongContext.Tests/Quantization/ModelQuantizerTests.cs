using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LongContext.Tests.Quantization;

[Trait(Category.Name, Category.Quantization)]
public sealed class ModelQuantizerTests
{
    /// <summary>A tiny decoder-shaped model: embedding, a norm weight, two projections in a block, an lm_head.</summary>
    private sealed class TinyBlock : Module<Tensor, Tensor>
    {
        private Module<Tensor, Tensor> up_proj;
        private Module<Tensor, Tensor> down_proj;
        public TinyBlock() : base(nameof(TinyBlock))
        {
            up_proj = Linear(64, 128, hasBias: false, dtype: ScalarType.BFloat16);
            down_proj = Linear(128, 64, hasBias: true, dtype: ScalarType.BFloat16);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => down_proj.forward(functional.silu(up_proj.forward(x)));
    }

    private sealed class TinyModel : Module<Tensor, Tensor>
    {
        private Embedding embed_tokens;
        private Parameter norm;
        private TinyBlock layer;
        private Module<Tensor, Tensor> lm_head;
        public TinyModel() : base(nameof(TinyModel))
        {
            embed_tokens = Embedding(50, 64, dtype: ScalarType.BFloat16);
            norm = new Parameter(ones(64, dtype: ScalarType.BFloat16));
            layer = new TinyBlock();
            lm_head = Linear(64, 50, hasBias: false, dtype: ScalarType.BFloat16);
            RegisterComponents();
        }
        public override Tensor forward(Tensor ids)
        {
            var h = embed_tokens.forward(ids);
            h = layer.forward(h) * norm.to(h.dtype);
            return lm_head.forward(h.to(((Linear)lm_head).weight!.dtype));
        }
    }

    private sealed class RigidModel : Module<Tensor, Tensor>
    {
        private Linear proj;
        public RigidModel() : base(nameof(RigidModel)) { proj = Linear(64, 64); RegisterComponents(); }
        public override Tensor forward(Tensor x) => proj.forward(x);
    }

    /// <summary>A swappable layer first, then one held in a field declared as Linear.</summary>
    private sealed class HalfRigidModel : Module<Tensor, Tensor>
    {
        private Module<Tensor, Tensor> first;
        private Linear second;
        public HalfRigidModel() : base(nameof(HalfRigidModel)) { first = Linear(64, 64); second = Linear(64, 64); RegisterComponents(); }
        public override Tensor forward(Tensor x) => second.forward(first.forward(x));
    }

    [Fact]
    public void Quantize_ReplacesEveryLinearButLmHead_ReportsMemory_AndForwardUsesTheQuantizedLayers()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        using var model = new TinyModel();
        var ids = tensor(new long[] { 1, 7, 3, 49, 0, 12 }).reshape(2, 3);
        // Expected forward computed from the dequantized weights of independently quantized copies.
        var upW = model.get_parameter("layer.up_proj.weight")!.detach().clone();
        var downW = model.get_parameter("layer.down_proj.weight")!.detach().clone();
        var downB = model.get_parameter("layer.down_proj.bias")!.detach().clone();
        long bytesBefore = model.parameters().Sum(p => p.numel() * p.ElementSize);

        var report = ModelQuantizer.Quantize(model);

        Assert.Equal(new[] { "layer.up_proj", "layer.down_proj" }, report.QuantizedModules);
        Assert.Equal(new[] { "lm_head" }, report.ExcludedModules);
        Assert.Equal(2 * 64 * 128, report.QuantizedParameters);
        Assert.Equal(bytesBefore, report.BytesBefore);
        // After: everything but the two weights as before, plus their 4-bit states (block 64, double quant).
        long n = 64 * 128, blocks = n / 64;
        long stateBytes = n / 2 + blocks + 4 * ((blocks + 255) / 256) + 4;
        long expectedAfter = bytesBefore - 2 * n * 2 + 2 * stateBytes;
        Assert.Equal(expectedAfter, report.BytesAfter);
        Assert.Equal(expectedAfter, ModelQuantizer.StoredBytes(model));
        Assert.True(report.CompressionRatio > 1);

        var names = model.named_modules().ToDictionary(m => m.name, m => m.module);
        Assert.IsType<Linear4Bit>(names["layer.up_proj"]);
        Assert.IsType<Linear4Bit>(names["layer.down_proj"]);
        Assert.IsType<Linear>(names["lm_head"]);

        using var upQ = Blockwise4Bit.Quantize(upW, QuantType.Nf4, 64, doubleQuant: true);
        using var downQ = Blockwise4Bit.Quantize(downW, QuantType.Nf4, 64, doubleQuant: true);
        var h = model.get_parameter("embed_tokens.weight")!.detach().index_select(0, ids.reshape(-1)).reshape(2, 3, 64);
        h = functional.linear(functional.silu(functional.linear(h, Blockwise4Bit.Dequantize(upQ))), Blockwise4Bit.Dequantize(downQ), downB);
        h = h * model.get_parameter("norm")!.detach();
        var expected = functional.linear(h, model.get_parameter("lm_head.weight")!.detach());
        TensorAssert.Close(model.forward(ids).to(float32), expected.to(float32), 1e-2, "model forward after quantization (bf16)");
    }

    /// <summary>
    /// Options other than QLoRA's defaults reach every quantized layer: FP4, block 128, no double quantization, a float32
    /// compute dtype. Each layer's codes and block scales equal quantizing its original weight with those settings
    /// (<see cref="Blockwise4Bit.Quantize"/>, pinned bit for bit to bitsandbytes by the quant fixtures), and the memory
    /// report follows the closed form for them: n/2 code bytes plus one float32 absmax per block of 128.
    /// </summary>
    [Fact]
    public void Quantize_NonDefaultOptions_ReachEveryQuantizedLayer()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        using var model = new TinyModel();
        var original = new Dictionary<string, Tensor>
        {
            ["layer.up_proj"] = model.get_parameter("layer.up_proj.weight")!.detach().clone(),
            ["layer.down_proj"] = model.get_parameter("layer.down_proj.weight")!.detach().clone(),
        };
        long bytesBefore = model.parameters().Sum(p => p.numel() * p.ElementSize);
        var options = new QuantizationOptions { Type = QuantType.Fp4, BlockSize = 128, DoubleQuant = false, ComputeDtype = ScalarType.Float32 };

        var report = ModelQuantizer.Quantize(model, options);

        Assert.Equal(original.Keys, report.QuantizedModules);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var (name, weight) in original)
        {
            var q = Assert.IsType<Linear4Bit>(modules[name]);
            Assert.Equal(QuantType.Fp4, q.State.QuantType);
            Assert.Equal(128, q.State.BlockSize);
            Assert.Null(q.State.Nested);
            Assert.Equal(ScalarType.Float32, q.ComputeDtype);
            Assert.Equal(ScalarType.BFloat16, q.State.OriginalDtype);
            using var expected = Blockwise4Bit.Quantize(weight, QuantType.Fp4, 128, doubleQuant: false);
            TensorAssert.Equal(q.State.Packed, expected.Packed, $"{name}: packed FP4 codes");
            TensorAssert.Equal(q.State.Absmax, expected.Absmax, $"{name}: float32 absmax per block of 128");
        }
        long n = 64 * 128, stateBytes = n / 2 + 4 * (n / 128);
        Assert.Equal(bytesBefore - 2 * n * 2 + 2 * stateBytes, report.BytesAfter);
    }

    [Fact]
    public void PrepareForKbitTraining_UpcastsHalfParametersToFloat32_AndFreezesEverything()
    {
        using var model = new TinyModel();
        ModelQuantizer.Quantize(model);
        ModelQuantizer.PrepareForKbitTraining(model);
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.Equal(ScalarType.Float32, p.dtype);
            Assert.False(p.requires_grad, name);
        }
        var names = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var up = Assert.IsType<Linear4Bit>(names["layer.up_proj"]);
        Assert.Equal(ScalarType.BFloat16, up.ComputeDtype);          // 4-bit layers keep their compute dtype
        Assert.Equal(ScalarType.Byte, up.State.Packed.dtype);
        Assert.Equal(ScalarType.Float32, ((Embedding)names["embed_tokens"]).weight!.dtype); // native module updated too
        using var logits = model.forward(tensor(new long[] { 1, 2, 3 }).reshape(1, 3));
        Assert.Equal(new long[] { 1, 3, 50 }, logits.shape);
    }

    [Fact]
    public void Quantize_ExclusionByFullPathOrSuffix()
    {
        using var model = new TinyModel();
        var report = ModelQuantizer.Quantize(model, new QuantizationOptions { Exclude = new[] { "layer.down_proj", "lm_head" } });
        Assert.Equal(new[] { "layer.up_proj" }, report.QuantizedModules);
        Assert.Equal(new[] { "layer.down_proj", "lm_head" }, report.ExcludedModules);
    }

    [Fact]
    public void Quantize_AnExclusionThatMatchesNoLinear_IsRefusedBeforeAnyLayerChanges()
    {
        using var model = new TinyModel();
        var e = Assert.Throws<ArgumentException>(() => ModelQuantizer.Quantize(model, new QuantizationOptions { Exclude = ["lm_head", "down_prj"] }));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("Exclude [down_prj] matches no Linear layer", e.Message);
        Assert.Contains("[layer.up_proj, layer.down_proj, lm_head]", e.Message);
        Assert.Empty(model.modules().OfType<Linear4Bit>());
    }

    [Fact]
    public void Quantize_TheDefaultExclusion_MayMatchNothing()
    {
        using var block = new TinyBlock();      // no lm_head: the default list (here written out) excludes nothing
        var report = ModelQuantizer.Quantize(block, new QuantizationOptions { Exclude = ["lm_head"] });
        Assert.Equal(new[] { "up_proj", "down_proj" }, report.QuantizedModules);
        Assert.Empty(report.ExcludedModules);
    }

    [Fact]
    public void Quantize_ParentFieldThatCannotHoldLinear4Bit_ThrowsNamingTheField()
    {
        using var model = new RigidModel();
        var e = Assert.Throws<InvalidOperationException>(() => ModelQuantizer.Quantize(model));
        Assert.Contains("proj", e.Message);
        Assert.Contains("Linear4Bit", e.Message);
    }

    [Fact]
    public void Quantize_ALaterFieldThatCannotHoldLinear4Bit_IsRefusedBeforeAnyLayerChanges()
    {
        using var model = new HalfRigidModel();
        var e = Assert.Throws<InvalidOperationException>(() => ModelQuantizer.Quantize(model));
        Assert.Contains("field 'second'", e.Message);
        Assert.Empty(model.modules().OfType<Linear4Bit>());                 // 'first' was not quantized either
        using var y = model.forward(randn(2, 64));                          // and the model still runs
    }

    /// <summary>
    /// LoRA then quantization (the wrong order): the LoRA layer reaches its base through the descriptor it was built
    /// with, so swapping the base under it would leave it running the disposed dense layer. Refused, naming the layer
    /// and the order to use, before any layer changes.
    /// </summary>
    [Fact]
    public void Quantize_AfterLoraInjection_IsRefusedNamingTheWrappedLayer_AndChangesNothing()
    {
        using var model = new TinyModel();
        LoraInjector.Inject(model, new LoraOptions { Rank = 2, TargetModules = ["down_proj"] });
        var e = Assert.Throws<InvalidOperationException>(() => ModelQuantizer.Quantize(model));
        Assert.Contains("'layer.down_proj.base_layer'", e.Message);
        Assert.Contains("QLora.Inject", e.Message);
        Assert.Empty(model.modules().OfType<Linear4Bit>());                 // up_proj, found first, was left dense too
        using var logits = model.forward(tensor(new long[] { 1, 2, 3 }).reshape(1, 3));
        Assert.Equal(new long[] { 1, 3, 50 }, logits.shape);
    }

    [Fact]
    public void Quantize_OfAQuantizedModel_IsReported_NotASilentNoOp()
    {
        using var model = new TinyModel();
        ModelQuantizer.Quantize(model);
        var e = Assert.Throws<InvalidOperationException>(() => ModelQuantizer.Quantize(model));
        Assert.Contains("no Linear layer to quantize", e.Message);
        Assert.Contains("2 layers are 4-bit already", e.Message);
        Assert.Contains("excluded: [lm_head]", e.Message);
    }

    [Fact]
    public void Quantize_WithEveryLinearExcluded_IsReported()
    {
        using var block = new TinyBlock();
        var e = Assert.Throws<InvalidOperationException>(() => ModelQuantizer.Quantize(block, new QuantizationOptions { Exclude = ["up_proj", "down_proj"] }));
        Assert.Contains("excluded: [up_proj, down_proj]", e.Message);
    }

    /// <summary>
    /// Children of TorchSharp's Sequential (kept in its own list, outside the registry) become 4-bit layers that the
    /// container's forward runs: its output equals tanh(x W_q^T + b) with W_q the layer's own dequantized weight (the
    /// dequantization itself is checked against bitsandbytes elsewhere), 1e-5; and it differs from the dense output.
    /// </summary>
    [Fact]
    public void ChildrenOfASequential_AreQuantized_AndItsForwardRunsThem()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var model = nn.Sequential(("fc", nn.Linear(64, 32)), ("act", nn.Tanh()));
        var x = randn(3, 64);
        var dense = model.call(x).detach().clone();
        var report = ModelQuantizer.Quantize(model, new QuantizationOptions { ComputeDtype = ScalarType.Float32 });
        Assert.Equal(["fc"], report.QuantizedModules);
        var layer = Assert.IsType<Linear4Bit>(model.named_children().Single(c => c.name == "fc").module);
        var expected = (x.matmul(layer.DequantizeWeight().t()) + layer.Bias!).tanh();
        TensorAssert.Close(model.call(x), expected, 1e-5, "Sequential's forward through the 4-bit layer");
        Assert.True(model.call(x).sub(dense).abs().max().item<float>() > 1e-4, "the output is the quantized layer's, not the dense one's");
    }
}
