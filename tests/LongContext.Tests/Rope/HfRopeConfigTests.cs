using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Rope;
using LongContext.Tests.Support;

namespace LongContext.Tests.Rope;

/// <summary>
/// Reading config.json's rope settings as HF transformers v5 does: both forms, HF's precedence and defaults, what HF
/// ignores (accepted, reported as a warning), what it refuses, and writing back.
/// </summary>
[Trait(Category.Name, Category.Rope)]
public sealed class HfRopeConfigTests
{
    private static JsonObject Config(string json) => JsonNode.Parse(json)!.AsObject();

    private static HfRopeReadResult Read(string json, int headDim = 16, int maxPositionEmbeddings = 1024)
        => HfRopeConfig.Read(Config(json), headDim, maxPositionEmbeddings);

    private static HfRopeReadResult ReadRope(string rope, int headDim = 16, int maxPositionEmbeddings = 1024)
        => Read($$"""{"rope_parameters": {{rope}}}""", headDim, maxPositionEmbeddings);

    private static string OnlyWarning(HfRopeReadResult read) => Assert.Single(read.Warnings);

    // ---- the two forms and HF's defaults ----

    [Fact]
    public void V5RopeParameters_TakesThetaFromInside()
    {
        var read = Read("""
            {"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
            """, headDim: 128, maxPositionEmbeddings: 131072);
        Assert.Equal(RopeParameters.Llama3(8, 1, 4, 8192, 500000), read.Parameters);
        Assert.Empty(read.Warnings);
    }

    [Fact]
    public void LegacyRopeScaling_UsesTopLevelThetaAndTypeAlias()
    {
        var read = Read("""{"rope_theta": 500000, "rope_scaling": {"type": "linear", "factor": 4.0}}""", 128, 8192);
        Assert.Equal(RopeParameters.Linear(4, 500000), read.Parameters);
        Assert.Empty(read.Warnings);
    }

    [Theory]
    [InlineData("no rope keys", """{"rope_theta": 1000000.0}""")]
    [InlineData("rope_scaling null", """{"rope_theta": 1000000.0, "rope_scaling": null}""")]
    [InlineData("rope_scaling empty", """{"rope_theta": 1000000.0, "rope_scaling": {}}""")]
    [InlineData("rope_parameters without rope_type", """{"rope_parameters": {"rope_theta": 1000000.0}}""")]
    public void NoScaling_IsDefaultRope(string form, string json)
    {
        var read = Read(json);
        Assert.True(RopeParameters.Default(1e6) == read.Parameters, form);
        Assert.Empty(read.Warnings);
    }

    [Fact]
    public void EmptyRopeScaling_FallsThroughToRopeParameters()
    {
        var read = Read("""{"rope_scaling": {}, "rope_parameters": {"rope_type": "linear", "factor": 2.0}}""");
        Assert.Equal(RopeParameters.Linear(2), read.Parameters);
    }

    [Fact]
    public void NoTheta_IsTenThousand()
        => Assert.Equal(10000, ReadRope("""{"rope_type": "linear", "factor": 2.0}""").Parameters.Theta);

    [Fact]
    public void Phi3LongRope_TakesTopLevelWindowAndDerivesFactor()
    {
        var p = Read("""
            {"original_max_position_embeddings": 4096, "partial_rotary_factor": 0.5, "rope_theta": 10000.0,
             "rope_scaling": {"type": "longrope", "short_factor": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],
                              "long_factor": [2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]}}
            """, headDim: 96, maxPositionEmbeddings: 131072).Parameters;
        Assert.Equal(RopeType.LongRope, p.Type);
        Assert.Equal(4096, p.OriginalMaxPositionEmbeddings);
        Assert.Equal(32.0, p.Factor);
        Assert.Equal(0.5, p.PartialRotaryFactor);
    }

    [Fact]
    public void YarnWithoutWindow_DefaultsItToMaxPositionEmbeddings()
        => Assert.Equal(32768, ReadRope("""{"rope_type": "yarn", "factor": 4.0}""", maxPositionEmbeddings: 32768).Parameters.OriginalMaxPositionEmbeddings);

    [Fact]
    public void YarnWithNullFactor_DerivesItFromTheWindows()
    {
        // HF: factor = rope_parameters["factor"]; if factor is None: factor = max_position_embeddings / original
        var p = ReadRope("""{"rope_type": "yarn", "factor": null, "original_max_position_embeddings": 4096}""", maxPositionEmbeddings: 16384).Parameters;
        Assert.Equal(4.0, p.Factor);
    }

    // ---- HF's precedence between duplicated keys: the loser is reported ----

    [Fact]
    public void InnerTheta_WinsOverTopLevel_WithAWarning()
    {
        var read = Read("""{"rope_theta": 7.0, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}}""");
        Assert.Equal(500000, read.Parameters.Theta);
        Assert.Contains("rope_theta 7 is ignored", OnlyWarning(read));
    }

    [Fact]
    public void TopLevelPartialRotaryFactor_WinsOverInner_WithAWarning()
    {
        var read = Read("""{"partial_rotary_factor": 0.5, "rope_parameters": {"rope_type": "default", "partial_rotary_factor": 0.25}}""");
        Assert.Equal(0.5, read.Parameters.PartialRotaryFactor);
        Assert.Contains("rope_parameters.partial_rotary_factor 0.25 is ignored", OnlyWarning(read));
    }

    [Fact]
    public void TopLevelOriginalWindow_WinsOverInnerForYarn_WithAWarning()
    {
        var read = Read("""{"original_max_position_embeddings": 2048, "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512}}""", maxPositionEmbeddings: 8192);
        Assert.Equal(2048, read.Parameters.OriginalMaxPositionEmbeddings);
        Assert.Contains("rope_parameters.original_max_position_embeddings 512 is ignored", OnlyWarning(read));
    }

    [Fact]
    public void RopeScaling_WinsOverDifferingRopeParameters_WithAWarning()
    {
        var read = Read("""{"rope_parameters": {"rope_type": "linear", "factor": 2.0}, "rope_scaling": {"rope_type": "linear", "factor": 4.0}}""");
        Assert.Equal(RopeParameters.Linear(4), read.Parameters);
        Assert.Contains("rope_parameters is ignored", OnlyWarning(read));
    }

    [Fact]
    public void RopeType_WinsOverDifferingTypeAlias_WithAWarning()
    {
        var read = Read("""{"rope_scaling": {"rope_type": "linear", "type": "dynamic", "factor": 4.0}}""");
        Assert.Equal(RopeParameters.Linear(4), read.Parameters);
        Assert.Contains("'dynamic' is ignored", OnlyWarning(read));
    }

    // ---- keys HF ignores: accepted, same parameters as without them, one warning naming the key ----

    [Theory]
    [InlineData("window with dynamic (Hub configs carry it)", """{"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 4096}""", """{"rope_type": "dynamic", "factor": 2.0}""", "original_max_position_embeddings")]
    [InlineData("beta_fast with linear", """{"rope_type": "linear", "factor": 2.0, "beta_fast": 32}""", """{"rope_type": "linear", "factor": 2.0}""", "beta_fast")]
    [InlineData("factor with default", """{"rope_type": "default", "factor": 4.0}""", """{"rope_type": "default"}""", "factor")]
    [InlineData("a key no type uses", """{"rope_type": "default", "mrope_section": [16, 24, 24]}""", """{"rope_type": "default"}""", "mrope_section")]
    public void KeyTheTypeDoesNotUse_IsIgnoredWithAWarning(string why, string withKey, string withoutKey, string key)
    {
        var read = ReadRope(withKey);
        Assert.True(ReadRope(withoutKey).Parameters == read.Parameters, why);
        string warning = OnlyWarning(read);
        Assert.Contains($"rope_parameters.{key}", warning);
        Assert.Contains("is not used by rope_type", warning);
    }

    [Theory]
    [InlineData("beta_fast", nameof(RopeParameters.BetaFast))]
    [InlineData("beta_slow", nameof(RopeParameters.BetaSlow))]
    public void ZeroBeta_IsReadAsUnset(string key, string property)
    {
        // HF: beta_fast = rope_parameters.get("beta_fast") or 32 (and beta_slow ... or 1)
        var read = ReadRope($$"""{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256, "{{key}}": 0}""", maxPositionEmbeddings: 1024);
        Assert.Null(typeof(RopeParameters).GetProperty(property)!.GetValue(read.Parameters));
        Assert.Contains($"rope_parameters.{key} is 0", OnlyWarning(read));
    }

    [Theory]
    [InlineData("mscale 0", """ "mscale": 0, "mscale_all_dim": 0.707 """, "mscale")]
    [InlineData("mscale_all_dim 0", """ "mscale": 0.707, "mscale_all_dim": 0 """, "mscale_all_dim")]
    public void ZeroMscale_DisablesTheMscalePairWithWarnings(string why, string keys, string zeroKey)
    {
        // HF: if mscale and mscale_all_dim: m(f, mscale) / m(f, mscale_all_dim) else m(f, 1)
        var read = ReadRope($$"""{"rope_type": "yarn", "factor": 16.0, "original_max_position_embeddings": 256, {{keys}}}""", maxPositionEmbeddings: 4096);
        Assert.Equal(0.1 * Math.Log(16) + 1, RopeFrequencyBuilder.Build(read.Parameters, 16, 4096).AttentionScaling, 12);
        Assert.True(read.Warnings.Any(w => w.Contains($"rope_parameters.{zeroKey} is 0")), why);
        Assert.True(read.Warnings.Any(w => w.Contains("has no effect without")), why);
    }

    [Fact]
    public void TruncateNull_ReadsAsFalseWithAWarning()
    {
        // HF: truncate = rope_parameters.get("truncate", True); if truncate: ... (None is falsy)
        var read = ReadRope("""{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256, "truncate": null}""");
        Assert.False(read.Parameters.Truncate);
        Assert.Contains("truncate is null", OnlyWarning(read));
    }

    [Theory]
    [InlineData("optional attention_factor", """{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256, "attention_factor": null}""")]
    [InlineData("optional beta_fast", """{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256, "beta_fast": null}""")]
    public void NullOptionalKey_IsUnsetWithoutAWarning(string why, string rope)
    {
        var read = ReadRope(rope);
        Assert.True(RopeParameters.Yarn(4, 256) == read.Parameters, why);
        Assert.Empty(read.Warnings);
    }

    // ---- what HF warns about but computes with: accepted, reported ----

    [Fact]
    public void YarnFactorOtherThanTheWindowRatio_IsUsedWithAWarning()
    {
        var read = ReadRope("""{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256}""", maxPositionEmbeddings: 2048);
        Assert.Equal(4, read.Parameters.Factor);
        Assert.Contains("differs from max_position_embeddings / original_max_position_embeddings = 2048 / 256", OnlyWarning(read));
    }

    [Fact]
    public void Llama3WindowNotBelowMaxPositions_IsUsedWithAWarning()
    {
        var read = ReadRope("""{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}""", maxPositionEmbeddings: 8192);
        Assert.Equal(8192, read.Parameters.OriginalMaxPositionEmbeddings);
        Assert.Contains("is not below max_position_embeddings 8192", OnlyWarning(read));
    }

    // ---- refused: what HF refuses or cannot compute, and values that would change the math ----

    [Fact]
    public void UnknownRopeType_IsRefusedNamingIt()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Read("""{"rope_scaling": {"type": "su", "factor": 2.0}}"""));
        Assert.Contains("rope_type", ex.Message);
        Assert.Contains("'su'", ex.Message);
    }

    [Theory]
    [InlineData("yarn without factor", """{"rope_type": "yarn"}""", "factor")]
    [InlineData("linear without factor", """{"rope_type": "linear"}""", "factor")]
    [InlineData("llama3 without low_freq_factor", """{"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0}""", "low_freq_factor")]
    [InlineData("longrope without long_factor", """{"rope_type": "longrope", "short_factor": [1,1,1,1,1,1,1,1]}""", "long_factor")]
    public void MissingRequiredKey_IsRefusedNamingIt(string why, string rope, string key)
    {
        var ex = Assert.Throws<InvalidDataException>(() => ReadRope(rope));
        Assert.True(ex.Message.Contains($"{key} is required"), $"{why}: {ex.Message}");
    }

    [Theory]
    [InlineData("factor below 1", """{"rope_type": "linear", "factor": 0.5}""", "factor", "0.5")]
    [InlineData("factor list of the wrong length", """{"rope_type": "longrope", "short_factor": [1,1,1,1,1,1,1,1], "long_factor": [1,1,1]}""", "long_factor", "got 3")]
    [InlineData("factor as a string", """{"rope_type": "linear", "factor": "4"}""", "factor", "\"4\"")]
    [InlineData("fractional window", """{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 40.5}""", "original_max_position_embeddings", "40.5")]
    [InlineData("attention_factor 0 (would zero cos and sin)", """{"rope_type": "yarn", "factor": 4.0, "attention_factor": 0}""", "attention_factor", "got 0")]
    [InlineData("beta_fast below beta_slow", """{"rope_type": "yarn", "factor": 4.0, "beta_fast": 1, "beta_slow": 2}""", "beta_fast", "(1)")]
    [InlineData("high_freq_factor not above low", """{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0}""", "high_freq_factor", "(4)")]
    [InlineData("null factor for linear (HF cannot divide by None)", """{"rope_type": "linear", "factor": null}""", "factor", "got null")]
    [InlineData("null rope_theta", """{"rope_type": "default", "rope_theta": null}""", "rope_theta", "got null")]
    public void InvalidValue_IsRefusedNamingKeyAndValue(string why, string rope, string key, string value)
    {
        var ex = Assert.Throws<InvalidDataException>(() => ReadRope(rope));
        Assert.True(ex.Message.Contains($"rope_parameters.{key}") && ex.Message.Contains(value), $"{why}: {ex.Message}");
    }

    [Fact]
    public void OddHeadDim_IsRefusedNamingHeadDim()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Read("{}", headDim: 15));
        Assert.Contains("head_dim 15", ex.Message);
    }

    [Fact]
    public void RopeScalingThatIsNotAnObject_IsRefused()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Read("""{"rope_scaling": "linear"}"""));
        Assert.Contains("rope_scaling must be an object or null", ex.Message);
    }

    // ---- writing ----

    public static TheoryData<string, RopeParameters> EveryType() => new()
    {
        { "default", RopeParameters.Default(1e6) },
        { "linear", RopeParameters.Linear(2.5) },
        { "dynamic", RopeParameters.Dynamic(3) },
        { "yarn, every option", new RopeParameters { Type = RopeType.Yarn, Factor = 40, OriginalMaxPositionEmbeddings = 4096, BetaFast = 32, BetaSlow = 1, Mscale = 0.707, MscaleAllDim = 0.707, Truncate = false, AttentionFactor = 1.2 } },
        { "longrope", RopeParameters.LongRope([1, 1.5, 2, 2.5, 1, 1, 1, 1.1], [3, 3.5, 4, 4.5, 5, 5, 5, 6.25], 4096, 16) },
        { "llama3", RopeParameters.Llama3(32, 1, 4, 8192) },
        { "partial rotary", RopeParameters.Linear(4) with { PartialRotaryFactor = 0.5 } },
    };

    private const string LegacyConfig = """{"head_dim": 16, "max_position_embeddings": 65536, "rope_theta": 7.0, "rope_scaling": {"type": "linear", "factor": 9.0}, "partial_rotary_factor": 1.0}""";

    [Theory]
    [MemberData(nameof(EveryType))]
    public void WriteThenRead_GivesTheSameParameters(string name, RopeParameters p)
    {
        var config = Config(LegacyConfig);
        HfRopeConfig.Write(config, p);
        Assert.True(p == HfRopeConfig.Read(Config(config.ToJsonString()), 16, 65536).Parameters, name);
    }

    [Theory]
    [MemberData(nameof(EveryType))]
    public void Write_ReplacesTheLegacyKeysWithRopeParameters(string name, RopeParameters p)
    {
        var config = Config(LegacyConfig);
        HfRopeConfig.Write(config, p);
        Assert.False(config.ContainsKey("rope_scaling"), name);
        Assert.False(config.ContainsKey("rope_theta"), name);
        Assert.Equal(HfRopeConfig.Name(p.Type), config["rope_parameters"]!["rope_type"]!.GetValue<string>());
    }

    [Fact]
    public void Write_PutsOnlyTheTypesSetKeys()
    {
        var config = new JsonObject();
        HfRopeConfig.Write(config, RopeParameters.Yarn(4, 256, betaFast: 16));
        Assert.Equal(new[] { "rope_type", "rope_theta", "factor", "original_max_position_embeddings", "beta_fast" },
            config["rope_parameters"]!.AsObject().Select(kv => kv.Key));
    }
}
