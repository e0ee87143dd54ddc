using LongContext.Lora;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Lora;

/// <summary>
/// <see cref="LoraOptions.TargetModules"/>: null means the caller's default (peft's q_proj, v_proj for plain LoRA),
/// an explicit list is used as given, bad lists are refused by name, and a saved adapter writes the resolved list.
/// </summary>
[Trait(Category.Name, Category.Lora)]
public sealed class LoraTargetModulesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lc-lora-targets-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static TinyModel Model()
    {
        manual_seed(11);
        return new TinyModel(vocab: 20, dim: 8, nLayers: 2);
    }

    private static readonly string[] QvNames =
        ["layers.0.self_attn.q_proj", "layers.0.self_attn.v_proj", "layers.1.self_attn.q_proj", "layers.1.self_attn.v_proj"];

    [Fact]
    public void Unset_IsNull_AndResolvesToPeftsDefault()
    {
        var options = new LoraOptions();
        Assert.Null(options.TargetModules);
        Assert.Equal(new[] { "q_proj", "v_proj" }, options.ResolvedTargetModules);
        Assert.Equal(LoraOptions.PeftDefaultTargetModules, options.ResolvedTargetModules);
    }

    [Fact]
    public void Unset_WrapsQAndV_AsPeft()
    {
        using var model = Model();
        Assert.Equal(QvNames, LoraInjector.Inject(model, new LoraOptions { Rank = 2 }).WrappedModules);
    }

    [Fact]
    public void Explicit_IsKeptAsGiven()
    {
        var options = new LoraOptions { TargetModules = ["v_proj", "o_proj"] };
        Assert.Equal(new[] { "v_proj", "o_proj" }, options.TargetModules);
        Assert.Equal(new[] { "v_proj", "o_proj" }, options.ResolvedTargetModules);
    }

    [Fact]
    public void AnEmptyList_IsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new LoraOptions { TargetModules = [] });
        Assert.Equal(nameof(LoraOptions.TargetModules), e.ParamName);
        Assert.Contains("empty list", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnEmptyName_IsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new LoraOptions { TargetModules = ["q_proj", " "] });
        Assert.Equal(nameof(LoraOptions.TargetModules), e.ParamName);
    }

    [Fact]
    public void AllLinear_BesideOtherNames_IsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new LoraOptions { TargetModules = [LoraOptions.AllLinear, "lm_head"] });
        Assert.Contains("only entry", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownNames_AreAnErrorNamingThem()
    {
        using var model = Model();
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.Inject(model, new LoraOptions { TargetModules = ["qkv"] }));
        Assert.Contains("[qkv]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unset_SavesTheResolvedList_AndLoadsBackTheSameLayers()
    {
        using var model = Model();
        LoraInjector.Inject(model, new LoraOptions { Rank = 2 });
        PeftAdapter.Save(model, _dir);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "adapter_config.json")))!;
        Assert.Equal(new[] { "q_proj", "v_proj" }, json["target_modules"]!.AsArray().Select(n => (string)n!));
        using var fresh = Model();
        Assert.Equal(QvNames, PeftAdapter.Load(fresh, _dir).WrappedModules);
    }
}
