using LongContext.IO;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

/// <summary>
/// LoRA on a Llama's <c>embed_tokens</c> (peft's <c>lora.Embedding</c> over the base table with the config's
/// <c>padding_idx</c>): the lookup against a float64 reference built from the table and A, B read before the forward,
/// the padding row's A column without gradient, the peft adapter round trip under peft's key names, merging (in place
/// and through a merged checkpoint), the tied head, and the conflict with training the embedding in full.
/// </summary>
[Trait(Category.Name, Category.Lora)]
[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class LlamaEmbeddingLoraTests : IDisposable
{
    private const double Tolerance64 = 1e-12;
    private static readonly LoraOptions Embed = new() { Rank = 4, Alpha = 8, TargetModules = ["embed_tokens", "q_proj"] };
    private readonly string _dir = Directory.CreateTempSubdirectory("lc-embed-lora-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Tensor Ids() => tensor(new long[,] { { 3, 0, 7, 7, 12, 1, 30, 5 }, { 9, 2, 0, 31, 4, 4, 8, 17 } });

    /// <summary>A float64 model with LoRA on embed_tokens and q_proj, every B set to seeded values (a fresh B is zero).</summary>
    private static LlamaForCausalLM Adapted(LlamaConfig config, LoraOptions? options = null)
    {
        random.manual_seed(21);
        var model = new LlamaForCausalLM(config, ScalarType.Float64);
        LoraInjector.Inject(model, options ?? Embed);
        var gen = new Generator(22);
        using (no_grad())
            foreach (var (_, layer) in LoraInjector.Layers(model))
            {
                Parameter a = layer.LoraA("default"), b = layer.LoraB("default");
                a.copy_(randn(a.shape, ScalarType.Float64, generator: gen));
                b.copy_(randn(b.shape, ScalarType.Float64, generator: gen).mul_(0.5));
            }
        model.eval();
        return model;
    }

    [Fact]
    public void Injection_WrapsEmbedTokensWithTheConfigsPaddingIndex()
    {
        using var model = Adapted(LlamaTrainingTests.Tiny() with { PadTokenId = 2 });
        var lora = Assert.IsType<LoraEmbedding>(model.Model.EmbedTokens);
        Assert.Equal(2L, lora.Base.PaddingIdx);
        Assert.Same(lora.Base.Table, model.Model.EmbeddingWeight);
        Assert.Contains(model.named_parameters(), p => p.name == "model.embed_tokens.lora_embedding_A.default");
        Assert.Contains(model.named_parameters(), p => p.name == "model.embed_tokens.base_layer.weight");
    }

    [Fact]
    public void Lookup_EqualsBaseRowPlusScaledBARow_InFloat64()
    {
        using var scope = NewDisposeScope();
        using var model = Adapted(LlamaTrainingTests.Tiny());
        var lora = (LoraEmbedding)model.Model.EmbedTokens;
        // Reference, element by element from the tensors' values: y[n, d] = W[id, d] + s * sum_k B[d, k] * A[k, id].
        double[] w = lora.Base.Table.detach().cpu().data<double>().ToArray();
        double[] a = lora.LoraA("default").detach().cpu().data<double>().ToArray();
        double[] b = lora.LoraB("default").detach().cpu().data<double>().ToArray();
        long[] ids = Ids().data<long>().ToArray();
        int dim = (int)lora.EmbeddingDim, vocab = (int)lora.NumEmbeddings, r = Embed.Rank;
        double s = Embed.Scaling;
        var expected = new double[ids.Length * dim];
        for (int n = 0; n < ids.Length; n++)
            for (int d = 0; d < dim; d++)
            {
                double delta = 0;
                for (int k = 0; k < r; k++) delta += b[d * r + k] * a[k * vocab + ids[n]];
                expected[n * dim + d] = w[ids[n] * dim + d] + s * delta;
            }
        Tensor actual;
        using (no_grad()) actual = model.Model.EmbedTokens.call(Ids());
        Assert.Equal(new long[] { 2, 8, dim }, actual.shape);
        TensorAssert.Close(actual, tensor(expected, ScalarType.Float64).view(2, 8, dim), Tolerance64, "LoRA embedding lookup");
        Assert.True(TensorAssert.MaxAbsDiff(actual, lora.Base.Table.index_select(0, Ids().reshape(-1)).view(2, 8, dim)) > 0.1,
            "the adapter must change the lookup (else the comparison proves nothing)");
    }

    [Fact]
    public void TiedHead_ReadsTheBaseTable_AsPeftDoes()
    {
        using var scope = NewDisposeScope();
        using var model = Adapted(LlamaTrainingTests.Tiny(tied: true));
        using var noGrad = no_grad();
        Tensor positions = arange(8, dtype: ScalarType.Int64).unsqueeze(0);
        Tensor hidden = model.Model.forward(Ids(), positions, null);
        TensorAssert.Close(model.forward(Ids()), matmul(hidden, model.Model.EmbeddingWeight.t()), Tolerance64, "tied logits over the base table");
    }

    [Fact]
    public void PaddingRow_OfA_GetsNoGradient()
    {
        using var scope = NewDisposeScope();
        using var model = Adapted(LlamaTrainingTests.Tiny() with { PadTokenId = 0 });
        model.train();
        model.Loss(Ids(), Ids()).backward();
        Tensor grad = ((LoraEmbedding)model.Model.EmbedTokens).LoraA("default").grad!;      // (r, vocab)
        TensorAssert.Equal(grad[.., 0], zeros(Embed.Rank, dtype: ScalarType.Float64), "A's column of the pad id");
        foreach (long id in new long[] { 3, 7, 12, 31 })
            Assert.True(grad[.., id].abs().max().item<double>() > 0, $"A's column of id {id} has no gradient");
    }

    [Fact]
    public void PeftAdapter_SaveLoad_RoundTripsUnderPeftsKeys()
    {
        using var scope = NewDisposeScope();
        var config = LlamaTrainingTests.Tiny() with { PadTokenId = 0 };
        using var model = Adapted(config);
        PeftAdapter.Save(model, _dir);
        var shapes = SafetensorsFile.ReadShapes(Path.Combine(_dir, "adapter_model.safetensors"));
        // peft's names: no adapter name, no ".weight" after lora_embedding_A/B; the wrapped embedding's base layer too.
        Assert.Equal(new long[] { 4, 32 }, shapes["base_model.model.model.embed_tokens.lora_embedding_A"]);
        Assert.Equal(new long[] { 32, 4 }, shapes["base_model.model.model.embed_tokens.lora_embedding_B"]);
        Assert.Equal(new long[] { 32, 32 }, shapes["base_model.model.model.embed_tokens.base_layer.weight"]);
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", shapes.Keys);

        random.manual_seed(21);   // the same base weights as Adapted's (A and B come from the file)
        using var fresh = new LlamaForCausalLM(config, ScalarType.Float64);
        PeftAdapter.Load(fresh, _dir);
        fresh.eval();
        Assert.Equal(0L, Assert.IsType<LoraEmbedding>(fresh.Model.EmbedTokens).Base.PaddingIdx);
        using var noGrad = no_grad();
        TensorAssert.Close(fresh.forward(Ids()), model.forward(Ids()), Tolerance64, "logits after the round trip");
    }

    [Fact]
    public void Merge_EqualsUnmerged_InPlaceAndThroughAMergedCheckpoint()
    {
        using var scope = NewDisposeScope();
        using var model = Adapted(LlamaTrainingTests.Tiny());
        using var noGrad = no_grad();
        Tensor unmerged = model.forward(Ids());
        LongLora.SaveMerged(model, _dir);
        using (var plain = LlamaCheckpoint.Load(_dir, ScalarType.Float64))
            TensorAssert.Close(plain.forward(Ids()), unmerged, 1e-10, "merged checkpoint");
        LoraInjector.Merge(model);
        TensorAssert.Close(model.forward(Ids()), unmerged, 1e-10, "merged in place");
        LoraInjector.Unmerge(model);
        TensorAssert.Close(model.forward(Ids()), unmerged, 1e-10, "unmerged again");
    }

    [Fact]
    public void EmbedTokens_AsTargetAndAsModuleToSave_IsAnErrorNamingBoth()
    {
        random.manual_seed(3);
        using var model = new LlamaForCausalLM(LlamaTrainingTests.Tiny());
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.Inject(model, Embed with { ModulesToSave = ["embed_tokens"] }));
        Assert.Contains("'model.embed_tokens'", e.Message, StringComparison.Ordinal);
        Assert.Contains("TargetModules entry 'embed_tokens'", e.Message, StringComparison.Ordinal);
        Assert.Contains("ModulesToSave entry 'embed_tokens'", e.Message, StringComparison.Ordinal);
        Assert.IsType<Embedding>(model.Model.EmbedTokens);   // nothing was wrapped
    }

    [Fact]
    public void Recipe_EmbedTokensTarget_WithTheDefaultEmbedExtra_IsAnErrorNamingBoth()
    {
        random.manual_seed(3);
        using var model = new LlamaForCausalLM(LlamaTrainingTests.Tiny());
        var options = new LongLoraOptions { TargetContextLength = 64, Lora = LongLoraOptions.DefaultLora() with { TargetModules = ["embed_tokens", "q_proj"] } };
        var e = Assert.Throws<ArgumentException>(() => LongLora.Prepare(model, options));
        Assert.Contains("TargetModules entry 'embed_tokens'", e.Message, StringComparison.Ordinal);
        Assert.Contains("ModulesToSave entry 'embed'", e.Message, StringComparison.Ordinal);
        Assert.Contains("TrainableExtras", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Recipe_EmbedTokensTarget_WithoutTheEmbedExtra_TrainsTheAdapterAndTheNorms()
    {
        random.manual_seed(3);
        using var model = new LlamaForCausalLM(LlamaTrainingTests.Tiny());
        var options = new LongLoraOptions
        {
            TargetContextLength = 64, TrainableExtras = ["norm"],
            Lora = LongLoraOptions.DefaultLora() with { TargetModules = ["embed_tokens", "q_proj"] },
        };
        var report = LongLora.Prepare(model, options);
        Assert.Contains("model.embed_tokens", report.WrappedModules);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.Contains("model.embed_tokens.lora_embedding_A.default", trainable);
        Assert.DoesNotContain("model.embed_tokens.base_layer.weight", trainable);
        Assert.Contains("model.norm.weight", trainable);
    }
}
