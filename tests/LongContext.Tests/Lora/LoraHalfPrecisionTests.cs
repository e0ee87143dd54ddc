using LongContext.IO;
using LongContext.Lora;
using LongContext.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

/// <summary>
/// Adapters over half-precision bases train in float32, as peft's default <c>autocast_adapter_dtype=True</c> keeps
/// them: parameters, forward, optimizer updates and saved files.
/// </summary>
[Trait(Category.Name, Category.Lora)]
public sealed class LoraHalfPrecisionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lora-half-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, ScalarType> HalfDtypes => new()
    {
        { "bfloat16", ScalarType.BFloat16 },
        { "float16", ScalarType.Float16 },
    };

    /// <summary>Unit roundoff of the dtype (half an ulp at 1).</summary>
    private static double Eps(ScalarType dtype) => dtype == ScalarType.BFloat16 ? Math.Pow(2, -8) : Math.Pow(2, -11);

    private static LoraLinear HalfLayer(ScalarType dtype, bool autocast = true)
    {
        manual_seed(17);
        var layer = LoraLinear.Wrap(nn.Linear(16, 8, hasBias: true, dtype: dtype), new LoraOptions { Rank = 4, Alpha = 8, Init = LoraInit.Gaussian, AutocastAdapterDtype = autocast });
        using (no_grad()) layer.LoraB("default").normal_();
        return layer;
    }

    [Theory]
    [MemberData(nameof(HalfDtypes))]
    public void LinearAdapters_AreFloat32_OverAHalfPrecisionBase(string name, ScalarType dtype)
    {
        using var layer = HalfLayer(dtype);
        Assert.True(layer.LoraA("default").dtype == ScalarType.Float32 && layer.LoraB("default").dtype == ScalarType.Float32, name);
    }

    [Theory]
    [MemberData(nameof(HalfDtypes))]
    public void EmbeddingAdapters_AreFloat32_OverAHalfPrecisionTable(string name, ScalarType dtype)
    {
        using var layer = new LoraEmbedding(nn.Embedding(10, 6, dtype: dtype), new LoraOptions { Rank = 2 });
        Assert.True(layer.LoraA("default").dtype == ScalarType.Float32 && layer.LoraB("default").dtype == ScalarType.Float32, name);
    }

    [Fact]
    public void Adapters_KeepTheBaseDtype_WhenAutocastIsOff()
    {
        using var layer = HalfLayer(ScalarType.BFloat16, autocast: false);
        Assert.Equal(ScalarType.BFloat16, layer.LoraA("default").dtype);
    }

    [Fact]
    public void Adapters_OverAFloat64Base_StayFloat64()
    {
        using var layer = LoraLinear.Wrap(nn.Linear(4, 4, dtype: float64), new LoraOptions { Rank = 2 });
        Assert.Equal(ScalarType.Float64, layer.LoraA("default").dtype);
    }

    [Theory]
    [MemberData(nameof(HalfDtypes))]
    public void LinearForward_EqualsTheFloat64ClosedForm_WithinHalfPrecisionTolerance(string name, ScalarType dtype)
    {
        using var layer = HalfLayer(dtype);
        using var x = randn(5, 16).to(dtype);
        using var y = layer.call(x);
        var lin = (Linear)layer.BaseLayer;
        using var expected = LoraLinearTests.ClosedForm(x, lin.weight!, lin.bias, layer.LoraA("default"), layer.LoraB("default"), 2);
        // rounding of the base output and of the sum, each at most half an ulp of the largest value
        double tolerance = 2 * Eps(dtype) * expected.abs().max().item<double>();
        TensorAssert.Close(y, expected, tolerance, $"{name} LoRA linear");
    }

    [Theory]
    [MemberData(nameof(HalfDtypes))]
    public void LinearForward_ReturnsTheBaseDtype(string name, ScalarType dtype)
    {
        using var layer = HalfLayer(dtype);
        using var x = randn(5, 16).to(dtype);
        Assert.True(layer.call(x).dtype == dtype, name);
    }

    [Theory]
    [MemberData(nameof(HalfDtypes))]
    public void EmbeddingForward_EqualsTheFloat64ClosedForm_WithinHalfPrecisionTolerance(string name, ScalarType dtype)
    {
        var emb = nn.Embedding(10, 6, dtype: dtype);
        using var layer = new LoraEmbedding(emb, new LoraOptions { Rank = 2, Alpha = 4 });
        using (no_grad()) layer.LoraA("default").normal_();
        long[] ids = [1, 9, 4];
        using var y = layer.call(tensor(ids));
        var table = emb.named_parameters(recurse: false).Single(p => p.name == "weight").parameter.detach().to(float64);
        var a = layer.LoraA("default").detach().to(float64);
        var b = layer.LoraB("default").detach().to(float64);
        using var expected = stack(ids.Select(i => table[i] + 2.0 * b.matmul(a[.., (int)i])).ToArray());
        double tolerance = Eps(dtype) * expected.abs().max().item<double>();   // one rounding: of the sum
        TensorAssert.Close(y, expected, tolerance, $"{name} LoRA embedding");
    }

    /// <summary>
    /// 200 AdamW steps at lr 2e-5 on a regression; A and B start at magnitudes in [0.01, 0.015), where half a
    /// bfloat16 ulp (3.05e-5) exceeds every Adam update (about lr). Returns the largest change of any adapter element.
    /// </summary>
    private static double ChangeAfterTraining(ScalarType dtype, bool autocast)
    {
        using var layer = HalfLayer(dtype, autocast);
        using (no_grad())
            foreach (var p in new[] { layer.LoraA("default"), layer.LoraB("default") })
            {
                using var magnitude = rand(p.shape).mul_(0.005).add_(0.01);
                using var sign = randint(0, 2, p.shape).mul_(2).sub_(1);
                p.copy_(magnitude * sign);
            }
        using var a0 = layer.LoraA("default").detach().to(float64);
        using var b0 = layer.LoraB("default").detach().to(float64);
        using var x = randn(32, 16).to(dtype);
        using var target = randn(32, 8);
        using var optimizer = optim.AdamW(layer.parameters().Where(p => p.requires_grad), lr: 2e-5, weight_decay: 0);
        for (int step = 0; step < 200; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            layer.call(x).to(ScalarType.Float32).sub(target).pow(2).mean().backward();
            optimizer.step();
        }
        double da = (layer.LoraA("default").detach().to(float64) - a0).abs().max().item<double>();
        double db = (layer.LoraB("default").detach().to(float64) - b0).abs().max().item<double>();
        return Math.Max(da, db);
    }

    [Theory]
    [MemberData(nameof(HalfDtypes))]
    public void AdamW_200StepsAtLr2e5_ChangeFloat32Adapters(string name, ScalarType dtype)
    {
        double change = ChangeAfterTraining(dtype, autocast: true);
        Assert.True(change > 1e-3, $"{name}: float32 adapters moved by at most {change:E2} in 200 steps of 2e-5");
    }

    [Fact]
    public void AdamW_200StepsAtLr2e5_LeaveBFloat16AdaptersUnchanged()
    {
        double change = ChangeAfterTraining(ScalarType.BFloat16, autocast: false);
        Assert.True(change == 0, $"bfloat16 adapters moved by {change:E2}; every update should round away");
    }

    [Fact]
    public void SavedAdapterTensors_AreFloat32_OverABFloat16Model()
    {
        using var model = new TinyModel(vocab: 20, dim: 8, nLayers: 2, ScalarType.BFloat16);
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        PeftAdapter.Save(model, _dir);
        var saved = SafetensorsFile.Load(Path.Combine(_dir, PeftAdapter.WeightsFileName));
        Assert.All(saved, kv => Assert.True(kv.Value.dtype == ScalarType.Float32, $"{kv.Key} is {kv.Value.dtype}"));
    }
}
