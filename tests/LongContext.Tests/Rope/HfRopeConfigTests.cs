using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Rope;
using LongContext.Tests.Support;

namespace LongContext.Tests.Rope;

/// <summary>config.json in both HF forms, HF's defaults, and errors that name the key.</summary>
[Trait(Category.Name, Category.Rope)]
public sealed class HfRopeConfigTests
{
    private static JsonObject Config(string json) => JsonNode.Parse(json)!.AsObject();

    [Fact]
    public void Read_V5RopeParameters_TakesThetaFromInside()
    {
        var p = HfRopeConfig.Read(Config("""
            {"head_dim": 128, "max_position_embeddings": 131072,
             "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
            """));
        Assert.Equal(RopeParameters.Llama3(8, 1, 4, 8192, 500000), p);
    }

    [Fact]
    public void Read_LegacyRopeScaling_UsesTopLevelThetaAndTypeAlias()
    {
        var p = HfRopeConfig.Read(Config("""
            {"hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 8192, "rope_theta": 500000,
             "rope_scaling": {"type": "linear", "factor": 4.0}}
            """));
        Assert.Equal(RopeParameters.Linear(4, 500000), p);
    }

    [Fact]
    public void Read_NullOrAbsentScaling_IsDefault()
    {
        Assert.Equal(RopeParameters.Default(), HfRopeConfig.Read(Config("""{"max_position_embeddings": 2048}""")));
        Assert.Equal(RopeParameters.Default(1e6), HfRopeConfig.Read(Config("""{"rope_theta": 1000000.0, "rope_scaling": null}""")));
    }

    [Fact]
    public void Read_Phi3LongRope_TakesTopLevelWindowAndDerivesFactor()
    {
        var p = HfRopeConfig.Read(Config("""
            {"hidden_size": 3072, "num_attention_heads": 32, "max_position_embeddings": 131072,
             "original_max_position_embeddings": 4096, "partial_rotary_factor": 0.5, "rope_theta": 10000.0,
             "rope_scaling": {"type": "longrope", "short_factor": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],
                              "long_factor": [2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]}}
            """));
        Assert.Equal(RopeType.LongRope, p.Type);
        Assert.Equal(4096, p.OriginalMaxPositionEmbeddings);
        Assert.Equal(32.0, p.Factor);
        Assert.Equal(0.5, p.PartialRotaryFactor);
        Assert.Equal(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), RopeFrequencyBuilder.Build(p, 96, 131072).AttentionScaling, 12);
    }

    [Fact]
    public void Read_YarnWithoutWindow_DefaultsItToMaxPositionEmbeddings()
    {
        var p = HfRopeConfig.Read(Config("""{"max_position_embeddings": 32768, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}"""));
        Assert.Equal(32768, p.OriginalMaxPositionEmbeddings);
    }

    public static TheoryData<string> Factories() => new() { "default", "linear", "dynamic", "yarn", "longrope", "llama3", "partial" };

    [Theory]
    [MemberData(nameof(Factories))]
    public void WriteThenRead_RoundTripsAndReplacesLegacyKeys(string which)
    {
        RopeParameters p = which switch
        {
            "default" => RopeParameters.Default(1e6),
            "linear" => RopeParameters.Linear(2.5),
            "dynamic" => RopeParameters.Dynamic(3),
            "yarn" => new RopeParameters { Type = RopeType.Yarn, Factor = 40, OriginalMaxPositionEmbeddings = 4096, BetaFast = 32, BetaSlow = 1, Mscale = 0.707, MscaleAllDim = 0.707, Truncate = false, AttentionFactor = 1.2 },
            "longrope" => RopeParameters.LongRope([1, 1.5, 2, 2.5, 1, 1, 1, 1.1], [3, 3.5, 4, 4.5, 5, 5, 5, 6.25], 4096, 16),
            "llama3" => RopeParameters.Llama3(32, 1, 4, 8192),
            _ => RopeParameters.Linear(4) with { PartialRotaryFactor = 0.5 },
        };
        var config = Config("""{"head_dim": 16, "max_position_embeddings": 65536, "rope_theta": 7.0, "rope_scaling": {"type": "linear", "factor": 9.0}, "partial_rotary_factor": 1.0}""");
        HfRopeConfig.Write(config, p);
        Assert.False(config.ContainsKey("rope_scaling"));
        Assert.False(config.ContainsKey("rope_theta"));
        Assert.Equal(HfRopeConfig.Name(p.Type), config["rope_parameters"]!["rope_type"]!.GetValue<string>());
        Assert.Equal(p, HfRopeConfig.Read(Config(config.ToJsonString())));
        Assert.Equal(p, HfRopeConfig.Read(config));
    }

    [Fact]
    public void Read_UnknownRopeType_NamesIt()
    {
        var ex = Assert.Throws<InvalidDataException>(() => HfRopeConfig.Read(Config("""{"rope_scaling": {"type": "su", "factor": 2.0}}""")));
        Assert.Contains("rope_type", ex.Message);
        Assert.Contains("'su'", ex.Message);
    }

    [Fact]
    public void Read_UnknownKey_NamesIt()
    {
        var ex = Assert.Throws<InvalidDataException>(() => HfRopeConfig.Read(Config("""{"rope_parameters": {"rope_type": "default", "mrope_section": [16, 24, 24]}}""")));
        Assert.Contains("'mrope_section'", ex.Message);
        var unused = Assert.Throws<InvalidDataException>(() => HfRopeConfig.Read(Config("""{"rope_parameters": {"rope_type": "linear", "factor": 2.0, "beta_fast": 32}}""")));
        Assert.Contains("'beta_fast'", unused.Message);
        Assert.Contains("linear", unused.Message);
    }

    [Theory]
    [InlineData("""{"rope_type": "yarn"}""", "factor")]
    [InlineData("""{"rope_type": "linear"}""", "factor")]
    [InlineData("""{"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0}""", "low_freq_factor")]
    [InlineData("""{"rope_type": "longrope", "short_factor": [1,1,1,1,1,1,1,1]}""", "long_factor")]
    public void Read_MissingRequiredKey_NamesIt(string rope, string key)
    {
        var ex = Assert.Throws<InvalidDataException>(() => HfRopeConfig.Read(Config($$"""{"head_dim": 16, "max_position_embeddings": 1024, "rope_parameters": {{rope}}}""")));
        Assert.Contains($"{key} is required", ex.Message);
    }

    [Theory]
    [InlineData("""{"rope_type": "linear", "factor": 0.5}""", "factor", "0.5")]
    [InlineData("""{"rope_type": "longrope", "short_factor": [1,1,1,1,1,1,1,1], "long_factor": [1,1,1]}""", "long_factor", "got 3")]
    [InlineData("""{"rope_type": "linear", "factor": "4"}""", "factor", "\"4\"")]
    [InlineData("""{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 40.5}""", "original_max_position_embeddings", "40.5")]
    public void Read_InvalidValue_NamesKeyAndValue(string rope, string key, string value)
    {
        var ex = Assert.Throws<InvalidDataException>(() => HfRopeConfig.Read(Config($$"""{"head_dim": 16, "max_position_embeddings": 1024, "rope_parameters": {{rope}}}""")));
        Assert.Contains(key, ex.Message);
        Assert.Contains(value, ex.Message);
    }

    [Fact]
    public void Read_OddHeadDim_NamesHeadDim()
    {
        var ex = Assert.Throws<InvalidDataException>(() => HfRopeConfig.Read(Config("""{"head_dim": 15, "max_position_embeddings": 1024}""")));
        Assert.Contains("head_dim", ex.Message);
        Assert.Contains("15", ex.Message);
    }

    [Fact]
    public void Read_ConflictingForms_Throw()
    {
        Assert.Throws<InvalidDataException>(() => HfRopeConfig.Read(Config("""{"rope_parameters": {"rope_type": "linear", "factor": 2.0}, "rope_scaling": {"rope_type": "linear", "factor": 4.0}}""")));
        var ex = Assert.Throws<InvalidDataException>(() => HfRopeConfig.Read(Config("""{"rope_scaling": {"rope_type": "linear", "type": "dynamic", "factor": 4.0}}""")));
        Assert.Contains("'dynamic'", ex.Message);
    }
}
