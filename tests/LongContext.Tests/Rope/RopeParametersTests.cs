using LongContext.Rope;
using LongContext.Tests.Support;

namespace LongContext.Tests.Rope;

/// <summary>
/// RopeParameters and RotaryEmbeddingOptions are validated where they are built: each field as it is set, the
/// type's keys and the model shape by Validate (and by everything that takes them). Messages name the field.
/// </summary>
[Trait(Category.Name, Category.Rope)]
public sealed class RopeParametersTests
{
    private static readonly Dictionary<string, (Func<object> Build, string Field, string Shown)> OutOfRange = new()
    {
        ["theta 0"] = (() => new RopeParameters { Theta = 0 }, "Theta", "got 0"),
        ["theta infinite"] = (() => new RopeParameters { Theta = double.PositiveInfinity }, "Theta", "positive finite"),
        ["partial rotary factor 1.5"] = (() => new RopeParameters { PartialRotaryFactor = 1.5 }, "PartialRotaryFactor", "(0, 1]"),
        ["original window 0"] = (() => new RopeParameters { OriginalMaxPositionEmbeddings = 0 }, "OriginalMaxPositionEmbeddings", "got 0"),
        ["beta_fast negative"] = (() => new RopeParameters { BetaFast = -1 }, "BetaFast", "got -1"),
        ["mscale 0"] = (() => new RopeParameters { Mscale = 0 }, "Mscale", "got 0"),
        ["attention factor 0"] = (() => new RopeParameters { AttentionFactor = 0 }, "AttentionFactor", "got 0"),
        ["short factor with a zero"] = (() => new RopeParameters { ShortFactor = [1, 0, 1] }, "ShortFactor", "entry 1"),
        ["undefined type"] = (() => new RopeParameters { Type = (RopeType)42 }, "Type", "42"),
        ["options head dim 0"] = (() => new RotaryEmbeddingOptions(0, 128, RopeParameters.Default()), "HeadDim", "got 0"),
        ["options window 0"] = (() => new RotaryEmbeddingOptions(16, 0, RopeParameters.Default()), "MaxPositionEmbeddings", "got 0"),
        ["options position limit 0"] = (() => new RotaryEmbeddingOptions(16, 128, RopeParameters.Default()) { PositionLimit = 0 }, "PositionLimit", "got 0"),
    };

    public static TheoryData<string> OutOfRangeCases() => new(OutOfRange.Keys);

    [Theory]
    [MemberData(nameof(OutOfRangeCases))]
    public void FieldSetOutOfRange_ThrowsNamingFieldAndValue(string name)
    {
        var (build, field, shown) = OutOfRange[name];
        var ex = Assert.ThrowsAny<ArgumentException>(build);
        Assert.Equal(field, ex.ParamName);
        Assert.Contains(shown, ex.Message);
    }

    [Fact]
    public void Factory_FactorBelowOne_ThrowsNamingFactorAndValue()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => RopeParameters.Linear(0.5));
        Assert.Equal("Factor", ex.ParamName);
        Assert.Contains("0.5", ex.Message);
        Assert.Contains(">= 1", ex.Message);
    }

    private static readonly Dictionary<string, (RopeParameters P, string Field)> MissingRequired = new()
    {
        ["llama3 without LowFreqFactor"] = (new RopeParameters { Type = RopeType.Llama3, Factor = 8, HighFreqFactor = 4 }, "LowFreqFactor"),
        ["longrope without LongFactor"] = (new RopeParameters { Type = RopeType.LongRope, ShortFactor = new double[8].Select(_ => 1.0).ToArray() }, "LongFactor"),
        ["longrope without ShortFactor"] = (new RopeParameters { Type = RopeType.LongRope, LongFactor = new double[8].Select(_ => 1.0).ToArray() }, "ShortFactor"),
    };

    public static TheoryData<string> MissingRequiredCases() => new(MissingRequired.Keys);

    [Theory]
    [MemberData(nameof(MissingRequiredCases))]
    public void RequiredFieldMissing_ThrowsNamingIt(string name)
    {
        var (p, field) = MissingRequired[name];
        var ex = Assert.Throws<ArgumentException>(() => p.Validate(16, 1024));
        Assert.Equal(field, ex.ParamName);
        Assert.Contains("is required", ex.Message);
    }

    private static readonly Dictionary<string, (RopeParameters P, string Field, string Type)> Unused = new()
    {
        ["beta_fast with linear"] = (RopeParameters.Linear(2) with { BetaFast = 16 }, "BetaFast", "Linear"),
        ["factor with default"] = (new RopeParameters { Factor = 4 }, "Factor", "Default"),
        ["original window with dynamic"] = (RopeParameters.Dynamic(2) with { OriginalMaxPositionEmbeddings = 64 }, "OriginalMaxPositionEmbeddings", "Dynamic"),
        ["long factor with yarn"] = (RopeParameters.Yarn(2, 64) with { LongFactor = [1.0] }, "LongFactor", "Yarn"),
    };

    public static TheoryData<string> UnusedCases() => new(Unused.Keys);

    [Theory]
    [MemberData(nameof(UnusedCases))]
    public void FieldUnusedByTheType_ThrowsInsteadOfBeingIgnored(string name)
    {
        var (p, field, type) = Unused[name];
        var ex = Assert.Throws<ArgumentException>(() => p.Validate(16, 128));
        Assert.Equal(field, ex.ParamName);
        Assert.Contains($"not used by rope type {type}", ex.Message);
    }

    [Fact]
    public void Llama3_HighNotAboveLow_Throws()
        => Assert.Equal("HighFreqFactor", Assert.Throws<ArgumentException>(() => RopeParameters.Llama3(8, 4, 4, 8192)).ParamName);

    [Fact]
    public void Yarn_BetaFastBelowBetaSlow_Throws()
        => Assert.Equal("BetaFast", Assert.Throws<ArgumentException>(() => RopeParameters.Yarn(4, 256, betaFast: 1, betaSlow: 2)).ParamName);

    [Theory]
    [InlineData("long factor", "LongFactor")]
    [InlineData("short factor", "ShortFactor")]
    public void FactorListOfWrongLength_ThrowsNamingListAndLengths(string which, string field)
    {
        double[] eight = Enumerable.Repeat(1.0, 8).ToArray(), seven = Enumerable.Repeat(1.0, 7).ToArray();
        var p = which == "long factor" ? RopeParameters.LongRope(eight, seven, 256, 4) : RopeParameters.LongRope(seven, eight, 256, 4);
        var ex = Assert.Throws<ArgumentException>(() => p.Validate(16, 1024));
        Assert.Equal(field, ex.ParamName);
        Assert.Contains("rotaryDim/2 = 8", ex.Message);
        Assert.Contains("got 7", ex.Message);
    }

    [Theory]
    [InlineData("odd head dim", 15, 1.0, "15")]
    [InlineData("odd rotated part", 16, 0.3125, "= 5")]
    public void OddRotatedDimension_ThrowsNamingHeadDim(string why, int headDim, double partial, string shown)
    {
        var p = RopeParameters.Default() with { PartialRotaryFactor = partial };
        var ex = Assert.Throws<ArgumentException>(() => new RotaryEmbeddingOptions(headDim, 128, p));
        Assert.Equal("headDim", ex.ParamName);
        Assert.True(ex.Message.Contains(shown) && ex.Message.Contains("even"), $"{why}: {ex.Message}");
    }

    [Fact]
    public void OptionsWith_RechecksTheParametersAgainstTheNewHeadDim()
    {
        var options = new RotaryEmbeddingOptions(16, 128, RopeParameters.LongRope(new double[8].Select(_ => 1.0).ToArray(), new double[8].Select(_ => 2.0).ToArray(), 64, 2));
        var ex = Assert.Throws<ArgumentException>(() => options with { HeadDim = 32 });
        Assert.Equal("ShortFactor", ex.ParamName);
    }

    [Fact]
    public void EqualFields_AreEqual_FactorListsByValue()
    {
        RopeParameters a = RopeParameters.LongRope([1, 2], [3, 4], 64, 2), b = RopeParameters.LongRope([1, 2], [3, 4], 64, 2);
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, a with { LongFactor = [3, 5] });
    }

    [Fact]
    public void FactorLists_AreCopied()
    {
        double[] source = [1, 2];
        var p = RopeParameters.LongRope(source, [3, 4], 64, 2);
        source[0] = 9;
        Assert.Equal(1, p.ShortFactor![0]);
    }
}
