using LongContext.Llama;
using LongContext.Llama.Generation;
using LongContext.Rope;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Generation;

/// <summary>
/// Cached decoding against full forwards of the whole sequence, on the tiny fixture checkpoint under every rope type:
/// the next-token logits of each of 32 greedy steps equal the last-position logits of an uncached forward of the
/// prompt plus the tokens so far, within 1e-5 in float32, prompts longer than max_position_embeddings included.
/// </summary>
[Trait(Category.Name, Category.Generation)]
[Trait(Category.Name, Category.Reference)]
public sealed class CachedDecodingTests
{
    private const double Tolerance = 1e-5;
    private const int Steps = 32;
    private static readonly double[] Short = [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.0, 3.5];
    private static readonly double[] Long = [1.0, 1.5, 2.5, 4.0, 6.0, 8.0, 11.0, 14.0];

    public static TheoryData<string, RopeParameters, int, int> RopeCases() => new()
    {
        // name, rope, max_position_embeddings, prompt length
        { "default, prompt past max_position_embeddings", RopeParameters.Default(), 16, 20 },
        { "linear PI factor 4, prompt past max_position_embeddings", RopeParameters.Linear(4), 16, 20 },
        { "dynamic NTK, decoding crosses max_position_embeddings", RopeParameters.Dynamic(2), 24, 10 },
        { "dynamic NTK, prompt past max_position_embeddings", RopeParameters.Dynamic(2), 24, 30 },
        { "YaRN factor 4 over 16, prompt past the original window", RopeParameters.Yarn(4, 16), 64, 20 },
        { "LongRoPE, decoding crosses the original window (short to long factors)", RopeParameters.LongRope(Short, Long, 20, 4), 80, 12 },
        { "LongRoPE, prompt past the original window", RopeParameters.LongRope(Short, Long, 20, 4), 80, 26 },
        { "Llama 3 factor 8 over 16, prompt past the original window", RopeParameters.Llama3(8, 1, 4, 16, 10000), 128, 20 },
    };

    [Theory]
    [MemberData(nameof(RopeCases))]
    public void EveryStep_EqualsAFullForwardOfTheWholeSequence(string name, RopeParameters rope, int maxPositions, int promptLength)
    {
        using var model = GenerationModels.Fixture(rope, maxPositions);
        using var reference = GenerationModels.Fixture(rope, maxPositions);
        int[] prompt = GenerationModels.Prompt(promptLength);
        var (results, logits) = GenerationModels.GenerateWithLogits(model, [prompt], new DecodingOptions { MaxNewTokens = Steps },
            new GeneratorOptions { PrefillChunkSize = 7 });
        IReadOnlyList<int> generated = results[0].TokenIds;
        Assert.Equal(Steps, generated.Count);
        for (int step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            var sequence = prompt.Concat(generated.Take(step)).ToArray();
            TensorAssert.Close(logits[step][0], GenerationModels.FullForwardLast(reference, sequence), Tolerance, $"{name}: step {step} (length {sequence.Length})");
        }
        foreach (var l in logits) l.Dispose();
    }

    [Fact]
    public void Greedy_EqualsTheArgmaxOfRepeatedFullForwards()
    {
        using var model = GenerationModels.Fixture();
        int[] prompt = GenerationModels.Prompt(9, seed: 2);
        var result = new LlamaGenerator(model).Generate(prompt, new DecodingOptions { MaxNewTokens = 16 });
        var sequence = prompt.ToList();
        var expected = new List<int>();
        for (int i = 0; i < 16; i++)
        {
            using var scope = NewDisposeScope();
            int next = (int)GenerationModels.FullForwardLast(model, sequence).argmax().item<long>();
            expected.Add(next);
            sequence.Add(next);
        }
        Assert.Equal(expected, result.TokenIds);
        Assert.Equal(FinishReason.MaxNewTokens, result.Finish);
    }

    public static TheoryData<string, int> ChunkSizes() => new()
    {
        { "one token per chunk", 1 },
        { "chunks of 5 over 23 tokens (a ragged last chunk)", 5 },
        { "the whole prompt at once", 512 },
    };

    [Theory]
    [MemberData(nameof(ChunkSizes))]
    public void Prefill_InChunks_GivesTheFullForwardsLastLogits(string name, int chunk)
    {
        using var model = GenerationModels.Fixture();
        int[] prompt = GenerationModels.Prompt(23, seed: 3);
        using var cache = new KvCache(model.Config, 1, 23);
        using var scope = NewDisposeScope();
        Tensor ids = tensor(prompt.Select(i => (long)i).ToArray()).unsqueeze(0);
        Tensor logits;
        using (no_grad()) logits = model.NextTokenLogits(ids, cache, chunkSize: chunk);
        TensorAssert.Close(logits[0], GenerationModels.FullForwardLast(model, prompt), Tolerance, name);
        Assert.Equal(23, cache.Length);
    }

    [Fact]
    public void NextTokenLogits_WhenTheRopesFrequenciesChangedUnderTheCache_Throws()
    {
        using var model = GenerationModels.Fixture(RopeParameters.Dynamic(2), 24);
        using var cache = new KvCache(model.Config, 1, 64);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.NextTokenLogits(tensor(GenerationModels.Prompt(30).Select(i => (long)i).ToArray()).unsqueeze(0), cache);
        var e = Assert.Throws<InvalidOperationException>(() => model.NextTokenLogits(tensor(new long[,] { { 5 } }), cache));
        Assert.Contains("Dynamic", e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, ScalarType, double> CacheDtypes() => new()
    {
        { "float16 cache under a float32 model", ScalarType.Float16, 5e-3 },
        { "bfloat16 cache under a float32 model", ScalarType.BFloat16, 5e-2 },
    };

    [Theory]
    [MemberData(nameof(CacheDtypes))]
    public void HalfPrecisionCache_StaysCloseToTheFloat32Cache(string name, ScalarType dtype, double tolerance)
    {
        using var model = GenerationModels.Fixture();
        int[] prompt = GenerationModels.Prompt(12, seed: 4);
        var options = new DecodingOptions { MaxNewTokens = 8 };
        var (full, fullLogits) = GenerationModels.GenerateWithLogits(model, [prompt], options);
        var (half, halfLogits) = GenerationModels.GenerateWithLogits(model, [prompt], options, new GeneratorOptions { CacheDtype = dtype });
        // Keys and values are rounded to the cache dtype when stored; the logits stay close while the token paths agree.
        for (int step = 0; step < 8 && full[0].TokenIds.Take(step).SequenceEqual(half[0].TokenIds.Take(step)); step++)
            TensorAssert.Close(halfLogits[step], fullLogits[step], tolerance, $"{name}: step {step}");
    }

    [Fact]
    public void KvCache_ReportsItsBytes()
    {
        using var model = GenerationModels.Fixture();
        // 2 (k, v) x 2 layers x B 3 x 2 kv heads x 40 positions x head dim 16 x element size
        using var f32 = new KvCache(model.Config, 3, 40, ScalarType.Float32);
        using var bf16 = new KvCache(model.Config, 3, 40, ScalarType.BFloat16);
        Assert.Equal(2L * 2 * 3 * 2 * 40 * 16 * 4, f32.Bytes);
        Assert.Equal(2L * 2 * 3 * 2 * 40 * 16 * 2, bf16.Bytes);
        Assert.Equal(f32.Bytes, f32.Layers.Sum(l => (l.Keys.numel() + l.Values.numel()) * 4));
    }

    [Fact]
    public void KvCache_Overflow_ThrowsNamingBothSizes()
    {
        using var model = GenerationModels.Fixture();
        using var cache = new KvCache(model.Config, 1, 8);
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => model.NextTokenLogits(ones(1, 9, dtype: ScalarType.Int64), cache));
        Assert.Contains("9 new tokens", e.Message, StringComparison.Ordinal);
        Assert.Contains("8 positions", e.Message, StringComparison.Ordinal);
        Assert.Equal("inputIds", e.ParamName);
    }

    /// <summary>A caller's own attention overflowing a layer's cache is told about its keys, not about input ids it never passed.</summary>
    [Fact]
    public void LayerAppend_Overflow_NamesTheKeys()
    {
        using var model = GenerationModels.Fixture();
        using var cache = new KvCache(model.Config, 1, 8);
        using var scope = NewDisposeScope();
        var shape = cache.Layers[0].Keys.shape.ToArray();
        shape[2] = 9;
        var k = zeros(shape);
        var e = Assert.Throws<ArgumentException>(() => cache.Layers[0].Append(k, k));
        Assert.Equal("k", e.ParamName);
        Assert.Contains("9 new positions of keys/values", e.Message, StringComparison.Ordinal);
        Assert.Contains("8 positions", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, cache.Length);
    }

    /// <summary>Keys of the wrong rank (a caller's own attention feeding the cache) get the shape message, not an index error.</summary>
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void LayerAppend_KeysOfAnotherRank_ThrowsNamingBothShapes(int rank)
    {
        using var model = GenerationModels.Fixture();
        using var cache = new KvCache(model.Config, 1, 8);
        using var scope = NewDisposeScope();
        var k = zeros(Enumerable.Repeat(2L, rank).ToArray());
        var e = Assert.Throws<ArgumentException>(() => cache.Layers[0].Append(k, k));
        Assert.Equal("k", e.ParamName);
        Assert.Contains("do not fit a cache of (1, ", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, cache.Length);
    }
}
