using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

/// <summary>
/// Every folder under <c>models/</c> with a peft <c>adapter_config.json</c> and reference logits is a case; its
/// <c>base_model_name_or_path</c> names the base checkpoint folder beside it. The merged logits
/// (<c>logits_merged</c>) are checked where a set provides them.
/// </summary>
[Trait(Category.Name, Category.Model)]
[Trait(Category.Name, Category.Reference)]
public sealed class LlamaLoraFixtureTests
{
    private const double LogitsTolerance = 1e-4;

    /// <summary>Adapter folders whose <c>expected.safetensors</c> holds <paramref name="entry"/> (entries a set may omit).</summary>
    private static TheoryData<string> FoldersWith(string entry)
    {
        var data = new TheoryData<string>();
        string root = Fixtures.Folder("models");
        if (!Directory.Exists(root)) return data;
        foreach (string dir in Directory.EnumerateDirectories(root).OrderBy(d => d, StringComparer.Ordinal))
        {
            string expected = Path.Combine(dir, "expected.safetensors");
            if (File.Exists(Path.Combine(dir, "adapter_config.json")) && File.Exists(expected) && SafetensorsFile.ReadShapes(expected).ContainsKey(entry))
                data.Add(Path.GetFileName(dir));
        }
        return data;
    }

    public static TheoryData<string> WithAdapterLogits() => FoldersWith("logits");

    public static TheoryData<string> WithMergedLogits() => FoldersWith("logits_merged");

    private static string BaseFolder(string adapterFolder)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterFolder, "adapter_config.json")))!.AsObject();
        string name = (string?)json["base_model_name_or_path"] ?? throw new InvalidDataException("adapter config lacks base_model_name_or_path");
        return Path.Combine(Path.GetDirectoryName(adapterFolder)!, name);
    }

    private static LlamaForCausalLM WithAdapter(string folder)
    {
        var model = LlamaCheckpoint.Load(BaseFolder(folder), ScalarType.Float32);
        PeftAdapter.Load(model, folder);
        model.eval();
        return model;
    }

    [Theory]
    [MemberData(nameof(WithAdapterLogits))]
    public void AdapterLogits_MatchPeft(string name)
    {
        string folder = Path.Combine(Fixtures.Folder("models"), name);
        using var scope = NewDisposeScope();
        var expected = SafetensorsFile.Load(Path.Combine(folder, "expected.safetensors"));
        using var model = WithAdapter(folder);
        using (no_grad())
            TensorAssert.Close(model.forward(expected["input_ids"]), expected["logits"], LogitsTolerance, $"{name} adapter-on logits");
    }

    [Theory]
    [MemberData(nameof(WithMergedLogits))]
    public void MergedCheckpointLogits_MatchPeftsMergeAndUnload(string name)
    {
        string folder = Path.Combine(Fixtures.Folder("models"), name);
        using var scope = NewDisposeScope();
        var expected = SafetensorsFile.Load(Path.Combine(folder, "expected.safetensors"));
        using var model = WithAdapter(folder);
        // Merged into a plain HF checkpoint folder and loaded back as a plain model.
        string merged = Path.Combine(Path.GetTempPath(), $"lc-merged-{Guid.NewGuid():N}");
        try
        {
            LongLora.SaveMerged(model, merged);
            using var plain = LlamaCheckpoint.Load(merged);
            Assert.DoesNotContain(plain.named_parameters(), p => p.name.Contains("lora", StringComparison.Ordinal));
            using (no_grad())
                TensorAssert.Close(plain.forward(expected["input_ids"]), expected["logits_merged"], LogitsTolerance, $"{name} merged-checkpoint logits");
        }
        finally
        {
            if (Directory.Exists(merged)) Directory.Delete(merged, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(WithMergedLogits))]
    public void InPlaceMergedLogits_MatchPeftsMergeAndUnload(string name)
    {
        string folder = Path.Combine(Fixtures.Folder("models"), name);
        using var scope = NewDisposeScope();
        var expected = SafetensorsFile.Load(Path.Combine(folder, "expected.safetensors"));
        using var model = WithAdapter(folder);
        LoraInjector.Merge(model);
        using (no_grad())
            TensorAssert.Close(model.forward(expected["input_ids"]), expected["logits_merged"], LogitsTolerance, $"{name} in-place merged logits");
    }
}
