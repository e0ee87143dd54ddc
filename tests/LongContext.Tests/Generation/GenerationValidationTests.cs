using LongContext.Attention;
using LongContext.Llama.Generation;
using LongContext.Tests.Support;

namespace LongContext.Tests.Generation;

/// <summary>Bad generation inputs give errors that name the value.</summary>
[Trait(Category.Name, Category.Generation)]
public sealed class GenerationValidationTests
{
    public static TheoryData<string, Func<object>, string, string> BadOptions() => new()
    {
        { "max new tokens 0", () => new DecodingOptions { MaxNewTokens = 0 }, nameof(DecodingOptions.MaxNewTokens), "0" },
        { "top-p 0", () => new DecodingOptions { TopP = 0 }, nameof(DecodingOptions.TopP), "(0, 1]" },
        { "top-p 1.5", () => new DecodingOptions { TopP = 1.5 }, nameof(DecodingOptions.TopP), "1.5" },
        { "top-k 0", () => new DecodingOptions { TopK = 0 }, nameof(DecodingOptions.TopK), "0" },
        { "temperature 0", () => new DecodingOptions { Temperature = 0 }, nameof(DecodingOptions.Temperature), "0" },
        { "repetition penalty -1", () => new DecodingOptions { RepetitionPenalty = -1 }, nameof(DecodingOptions.RepetitionPenalty), "-1" },
        { "a negative stop token", () => new DecodingOptions { StopTokenIds = [2, -4] }, nameof(DecodingOptions.StopTokenIds), "-4" },
        { "an empty stop string", () => new DecodingOptions { StopStrings = [""] }, nameof(DecodingOptions.StopStrings), "empty" },
        { "a prefill chunk of 0", () => new GeneratorOptions { PrefillChunkSize = 0 }, nameof(GeneratorOptions.PrefillChunkSize), "0" },
        { "an integer cache dtype", () => new GeneratorOptions { CacheDtype = TorchSharp.torch.ScalarType.Int32 }, nameof(GeneratorOptions.CacheDtype), "Int32" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Options_BadValue_ThrowsNamingIt(string name, Func<object> make, string property, string fragment)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => make());
        Assert.True(e.ParamName == property, $"{name}: ParamName {e.ParamName}");
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, int[][], DecodingOptions, GeneratorOptions?, string> BadCalls() => new()
    {
        { "an empty prompt", [[]], new DecodingOptions(), null, "prompt 0 is empty" },
        { "a prompt id outside the vocabulary", [[3, 128]], new DecodingOptions(), null, "128" },
        { "a prompt longer than the cache", [new int[10]], new DecodingOptions(), new GeneratorOptions { CacheCapacity = 8 }, "10 tokens is longer than the cache's capacity of 8" },
        { "prompt and new tokens past the cache", [new int[6]], new DecodingOptions { MaxNewTokens = 4 }, new GeneratorOptions { CacheCapacity = 8 }, "needs 10 positions" },
        { "MaxNewTokens int.MaxValue past a set cache (no overflow)", [new int[6]], new DecodingOptions { MaxNewTokens = int.MaxValue }, new GeneratorOptions { CacheCapacity = 8 }, "needs 2147483653 positions" },
        { "MaxNewTokens int.MaxValue past any cache", [new int[2]], new DecodingOptions { MaxNewTokens = int.MaxValue }, null, "needs 2147483649 cache positions" },
        { "an unknown stop token", [[1]], new DecodingOptions { StopTokenIds = [500] }, null, "500" },
        { "stop strings without a tokenizer", [[1]], new DecodingOptions { StopStrings = ["\n"] }, null, "need a tokenizer" },
        { "temperature with greedy decoding", [[1]], new DecodingOptions { Temperature = 0.7 }, null, "Temperature 0.7" },
        { "a seed with greedy decoding", [[1]], new DecodingOptions { Seed = 3 }, null, "Seed 3 is a sampling setting" },
        { "no prompt at all", [], new DecodingOptions(), null, "at least one prompt" },
    };

    [Theory]
    [MemberData(nameof(BadCalls))]
    public void Generate_BadInput_ThrowsNamingTheValue(string name, int[][] prompts, DecodingOptions options, GeneratorOptions? generatorOptions, string fragment)
    {
        using var model = GenerationModels.Fixture();
        var generator = new LlamaGenerator(model, generatorOptions);
        var e = Assert.ThrowsAny<ArgumentException>(() => generator.StreamBatch(prompts, options));
        Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal), $"{name}: {e.Message}");
    }

    [Fact]
    public void Generate_InTrainingMode_Throws()
    {
        using var model = GenerationModels.Fixture();
        model.train();
        var e = Assert.Throws<InvalidOperationException>(() => new LlamaGenerator(model).Generate([1, 2], new DecodingOptions()));
        Assert.Contains("eval()", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_WithS2InEvaluation_Throws()
    {
        using var model = GenerationModels.Fixture();
        var s2 = new AttentionOptions { Mode = AttentionMode.ShiftedSparse };
        model.ConfigureAttention(s2, s2);
        var e = Assert.Throws<InvalidOperationException>(() => new LlamaGenerator(model).Generate([1, 2], new DecodingOptions()));
        Assert.Contains("ShiftedSparse", e.Message, StringComparison.Ordinal);
    }
}
