using LongContext.IO;
using LongContext.Llama;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Model;

/// <summary>Every HF checkpoint folder under the fixture root's <c>models/</c> with reference logits is a case.</summary>
[Trait(Category.Name, Category.Model)]
[Trait(Category.Name, Category.Reference)]
public sealed class LlamaFixtureTests
{
    /// <summary>HF float32 vs. ours in float32 (fixtures README).</summary>
    private const double LogitsTolerance = 1e-4;

    public static TheoryData<string> ModelFolders()
    {
        var data = new TheoryData<string>();
        string root = Fixtures.Folder("models");
        if (!Directory.Exists(root)) return data;
        foreach (string dir in Directory.EnumerateDirectories(root).OrderBy(d => d, StringComparer.Ordinal))
        {
            if (File.Exists(Path.Combine(dir, "config.json")) && File.Exists(Path.Combine(dir, "expected.safetensors"))
                && (File.Exists(Path.Combine(dir, LlamaCheckpoint.WeightsFile)) || File.Exists(Path.Combine(dir, LlamaCheckpoint.IndexFile))))
                data.Add(Path.GetFileName(dir));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ModelFolders))]
    public void Logits_MatchHf_Float32(string name)
    {
        string folder = Path.Combine(Fixtures.Folder("models"), name);
        using var scope = NewDisposeScope();
        var expected = SafetensorsFile.Load(Path.Combine(folder, "expected.safetensors"));
        using var model = LlamaCheckpoint.Load(folder, ScalarType.Float32);
        using (no_grad())
        {
            Tensor logits = model.forward(expected["input_ids"]);
            TensorAssert.Close(logits, expected["logits"], LogitsTolerance, $"{name} logits");
        }
    }

    [Theory]
    [MemberData(nameof(ModelFolders))]
    public void SaveThenLoad_RoundTripsParametersAndLogits(string name)
    {
        string folder = Path.Combine(Fixtures.Folder("models"), name);
        string copy = Path.Combine(Path.GetTempPath(), $"lc-llama-{Guid.NewGuid():N}");
        try
        {
            using var scope = NewDisposeScope();
            using var model = LlamaCheckpoint.Load(folder);
            LlamaCheckpoint.Save(model, copy);
            using var again = LlamaCheckpoint.Load(copy);
            Assert.Equal(model.Config with { Source = null }, again.Config with { Source = null });
            var a = again.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var original = model.named_parameters().ToList();
            Assert.Equal(original.Count, a.Count);
            foreach (var (key, p) in original) TensorAssert.Equal(a[key], p, key);
            // The saved folder holds exactly HF's tensor names and the config keeps the original bookkeeping fields.
            Assert.Equal(LlamaCheckpoint.ExpectedParameters(model.Config).Keys.Order(), SafetensorsFile.ReadShapes(Path.Combine(copy, LlamaCheckpoint.WeightsFile)).Keys.Order());
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(copy, "config.json")))!.AsObject();
            Assert.Equal("llama", (string?)json["model_type"]);
            if (model.Config.Source?.TryGetValue("bos_token_id", out var bos) == true) Assert.Equal(bos.GetRawText(), json["bos_token_id"]!.ToJsonString());
        }
        finally
        {
            if (Directory.Exists(copy)) Directory.Delete(copy, recursive: true);
        }
    }
}
