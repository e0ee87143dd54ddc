using LongContext.Llama;
using LongContext.Llama.Generation;
using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Tests.Support;
using LongContext.Training;
using static TorchSharp.torch;

namespace LongContext.Tests.Generation;

/// <summary>A model with LoRA (dense or 4-bit base), merged or not, generates what its merged float checkpoint generates.</summary>
[Trait(Category.Name, Category.Generation)]
[Collection(GlobalRngCollection.Name)]
public sealed class AdapterGenerationTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), $"lc-gen-{Guid.NewGuid():N}");
    private static readonly DecodingOptions Greedy16 = new() { MaxNewTokens = 16 };
    private static readonly LoraOptions Lora = new() { Rank = 4, Alpha = 8, TargetModules = [LoraOptions.AllLinear], Init = LoraInit.Random };

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    private (IReadOnlyList<int> Tokens, List<Tensor> Logits) Run(LlamaForCausalLM model, int[] prompt)
    {
        var (results, logits) = GenerationModels.GenerateWithLogits(model, [prompt], Greedy16);
        return (results[0].TokenIds, logits);
    }

    private LlamaForCausalLM MergedCheckpoint(LlamaForCausalLM model, string name)
    {
        string folder = Path.Combine(root, name);
        LongLora.SaveMerged(model, folder);
        var plain = LlamaCheckpoint.Load(folder);
        plain.eval();
        return plain;
    }

    [Fact]
    public void Lora_UnmergedAndMerged_GenerateWhatTheMergedCheckpointGenerates()
    {
        random.manual_seed(41);
        using var model = GenerationModels.Fixture();
        LoraInjector.Inject(model, Lora);
        model.eval();
        int[] prompt = GenerationModels.Prompt(8, seed: 21);
        var unmerged = Run(model, prompt);
        using var plain = MergedCheckpoint(model, "merged");
        var reference = Run(plain, prompt);
        LoraInjector.Merge(model);
        var merged = Run(model, prompt);
        Assert.Equal(reference.Tokens, unmerged.Tokens);
        Assert.Equal(reference.Tokens, merged.Tokens);
        for (int step = 0; step < 16; step++)
        {
            TensorAssert.Close(unmerged.Logits[step], reference.Logits[step], 1e-4, $"unmerged step {step}");
            TensorAssert.Close(merged.Logits[step], reference.Logits[step], 1e-4, $"merged step {step}");
        }
        using var untouched = GenerationModels.Fixture();
        var baseline = Run(untouched, prompt);
        Assert.NotEqual(baseline.Tokens, reference.Tokens);   // the adapter does change the output
    }

    [Fact]
    public void QLora_GeneratesWhatItsMergedFloatCheckpointGenerates()
    {
        random.manual_seed(42);
        using var model = GenerationModels.Fixture();
        ModelQuantizer.Quantize(model, new QuantizationOptions());
        QLora.Inject(model, Lora);
        model.eval();
        int[] prompt = GenerationModels.Prompt(8, seed: 22);
        var quantized = Run(model, prompt);
        using var plain = MergedCheckpoint(model, "merged-q");   // dequantized base + LoRA delta, float32
        var reference = Run(plain, prompt);
        Assert.Equal(reference.Tokens, quantized.Tokens);
        for (int step = 0; step < 16; step++)
            TensorAssert.Close(quantized.Logits[step], reference.Logits[step], 1e-4, $"step {step}");
    }
}
