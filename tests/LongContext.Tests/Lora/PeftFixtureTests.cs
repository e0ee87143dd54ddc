using LongContext.IO;
using LongContext.Lora;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

/// <summary>
/// Adapters exactly as peft saved them (models/*/adapter_config.json): the config parses, and every key maps to a
/// module of a stand-in tree built from the base checkpoint's tensor names and shapes.
/// </summary>
[Trait(Category.Name, Category.Lora)]
[Trait(Category.Name, Category.Reference)]
public sealed class PeftFixtureTests
{
    public static TheoryData<string> Adapters()
    {
        var data = new TheoryData<string>();
        string root = Fixtures.Folder("models");
        if (!Directory.Exists(root)) return data;
        foreach (string dir in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
            if (File.Exists(Path.Combine(dir, PeftAdapterConfigJson.FileName))) data.Add(Path.GetFileName(dir));
        return data;
    }

    private static string BaseCheckpoint(string adapterDir, PeftAdapterConfigJson config)
    {
        string path = Path.Combine(Path.GetDirectoryName(adapterDir)!, config.BaseModelNameOrPath!, "model.safetensors");
        Assert.True(File.Exists(path), $"base checkpoint '{path}' named by base_model_name_or_path is missing");
        return path;
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void Config_ParsesIntoOptions(string adapter)
    {
        string dir = Path.Combine(Fixtures.Folder("models"), adapter);
        var config = PeftAdapterConfigJson.Read(Path.Combine(dir, PeftAdapterConfigJson.FileName));
        var options = PeftAdapter.ToOptions(config);
        Assert.Equal(config.R, options.Rank);
        Assert.Equal(config.LoraAlpha, options.Alpha);
        Assert.Equal(config.UseRsLora ? config.LoraAlpha / Math.Sqrt(config.R) : config.LoraAlpha / config.R, options.Scaling);
        Assert.Equal(LoraInit.Zeros, options.Init);
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void EveryKey_MapsToAModuleOfTheBaseCheckpoint_AndLoadsVerbatim(string adapter)
    {
        string dir = Path.Combine(Fixtures.Folder("models"), adapter);
        var config = PeftAdapterConfigJson.Read(Path.Combine(dir, PeftAdapterConfigJson.FileName));
        var baseShapes = SafetensorsFile.ReadShapes(BaseCheckpoint(dir, config));
        var adapterShapes = SafetensorsFile.ReadShapes(Path.Combine(dir, PeftAdapter.WeightsFileName));

        // each key's module exists in the checkpoint with the implied (out, in) and r
        foreach (var (key, shape) in adapterShapes)
        {
            Assert.StartsWith(PeftAdapter.KeyPrefix, key);
            string rest = key[PeftAdapter.KeyPrefix.Length..];
            string module = rest[..rest.IndexOf(".lora_", StringComparison.Ordinal)];
            Assert.True(baseShapes.TryGetValue(module + ".weight", out var w), $"{key}: no '{module}.weight' in the base checkpoint");
            long[] expected = rest.EndsWith(".lora_A.weight", StringComparison.Ordinal) ? [config.R, w![1]] : [w![0], config.R];
            Assert.Equal(expected, shape);
        }

        using var tree = StandInNode.FromCheckpoint(baseShapes);
        var report = PeftAdapter.Load(tree, dir);
        Assert.Equal(adapterShapes.Count / 2, report.WrappedModules.Count);
        var file = SafetensorsFile.Load(Path.Combine(dir, PeftAdapter.WeightsFileName));
        var state = tree.state_dict();
        foreach (var (key, t) in file)
        {
            string rest = key[PeftAdapter.KeyPrefix.Length..];
            string live = rest.Replace(".lora_A.weight", ".lora_A.default.weight", StringComparison.Ordinal)
                              .Replace(".lora_B.weight", ".lora_B.default.weight", StringComparison.Ordinal);
            TensorAssert.Equal(state[live], t, key);
        }
        Assert.Equal(report.Parameters.Trainable, file.Values.Sum(t => t.numel()));
    }
}
