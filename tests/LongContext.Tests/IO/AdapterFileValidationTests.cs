using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.IO;

/// <summary>Adapter folders whose config disagrees with itself or with its weights fail as bad files, before LoRA memory is allocated.</summary>
[Trait(Category.Name, Category.Lora)]
public sealed class AdapterFileValidationTests
{
    private static readonly LlamaConfig Tiny = new()
    {
        VocabSize = 64, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2,
        NumKeyValueHeads = 1, HeadDim = 8, MaxPositionEmbeddings = 64,
    };

    private static void WriteAdapterWith(string folder, string field, JsonNode? value)
    {
        random.manual_seed(3);
        using (var model = new LlamaForCausalLM(Tiny))
        {
            LoraInjector.Inject(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] });
            PeftAdapter.Save(model, folder);
        }
        string path = Path.Combine(folder, PeftAdapterConfigJson.FileName);
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json[field] = value;
        File.WriteAllText(path, json.ToJsonString());
    }

    [Theory]
    [InlineData("r", 2147483647, "r=2147483647")]   // would ask for 2^31 x 16 floats per layer
    [InlineData("r", 8, "r=8")]                     // a plausible rank that the tensors do not carry
    [InlineData("r", -1, "Rank must be positive")]
    [InlineData("lora_dropout", 1.5, "Dropout must be in [0, 1)")]
    [InlineData("lora_alpha", -2, "Alpha must be a positive finite number")]
    public void Load_ConfigValueTheWeightsOrTheOptionsRefuse_ThrowsInvalidDataNamingTheFile(string field, double value, string fragment)
    {
        using var folder = new TempFolder();
        WriteAdapterWith(folder.Path, field, JsonValue.Create(value));
        using var model = new LlamaForCausalLM(Tiny);
        var ex = Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(model, folder.Path));
        Assert.Contains(folder.Path, ex.Message);
        Assert.Contains(fragment, ex.Message);
        Assert.Empty(LoraInjector.Layers(model)); // refused before injection
    }

    [Theory]
    [InlineData("[1]")]
    [InlineData("[null]")]
    [InlineData("true")]
    [InlineData("5")]
    [InlineData("{}")]
    [InlineData("null")]
    [InlineData("\"(\"")]
    [InlineData("[\"\"]")]
    public void Load_TargetModulesOfTheWrongShape_ThrowsADocumentedException(string json)
    {
        using var folder = new TempFolder();
        WriteAdapterWith(folder.Path, "target_modules", JsonNode.Parse(json));
        using var model = new LlamaForCausalLM(Tiny);
        var ex = Record.Exception(() => PeftAdapter.Load(model, folder.Path));
        Assert.True(ex is InvalidDataException or NotSupportedException, $"target_modules {json}: {ex?.GetType().Name}: {ex?.Message}");
        Assert.Contains("target", ex!.Message, StringComparison.OrdinalIgnoreCase); // target_modules, or the option it becomes
    }

    [Theory]
    [InlineData("5")]
    [InlineData("[]")]
    [InlineData("{}")]
    public void Load_InitLoraWeightsOfTheWrongShape_ThrowsInvalidData(string json)
    {
        using var folder = new TempFolder();
        WriteAdapterWith(folder.Path, "init_lora_weights", JsonNode.Parse(json));
        using var model = new LlamaForCausalLM(Tiny);
        var ex = Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(model, folder.Path));
        Assert.Contains("init_lora_weights", ex.Message);
    }

    [Fact]
    public void Load_WeightsWithoutLoraTensors_ThrowsInvalidData()
    {
        using var folder = new TempFolder();
        WriteAdapterWith(folder.Path, "r", JsonValue.Create(4));
        using (var t = zeros(2)) SafetensorsFile.Save(Path.Combine(folder.Path, PeftAdapter.WeightsFileName), new Dictionary<string, Tensor> { ["x"] = t });
        using var model = new LlamaForCausalLM(Tiny);
        var ex = Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(model, folder.Path));
        Assert.Contains("holds no LoRA tensor", ex.Message);
    }
}
