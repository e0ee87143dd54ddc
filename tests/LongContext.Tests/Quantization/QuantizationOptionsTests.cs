using LongContext.Quantization;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Quantization;

/// <summary><see cref="QuantizationOptions"/> validates each option where it is set (in its <c>init</c> accessor).</summary>
[Trait(Category.Name, Category.Quantization)]
public sealed class QuantizationOptionsTests
{
    /// <summary>(row name, option, the bad value as text, how to build the options with it).</summary>
    public static TheoryData<string, string, string, Func<QuantizationOptions>> BadOptions() => new()
    {
        { "block size not a power of two", nameof(QuantizationOptions.BlockSize), "96", () => new QuantizationOptions { BlockSize = 96 } },
        { "block size below 32", nameof(QuantizationOptions.BlockSize), "16", () => new QuantizationOptions { BlockSize = 16 } },
        { "block size above 4096", nameof(QuantizationOptions.BlockSize), "8192", () => new QuantizationOptions { BlockSize = 8192 } },
        { "undefined quant type", nameof(QuantizationOptions.Type), "7", () => new QuantizationOptions { Type = (QuantType)7 } },
        { "integer compute dtype", nameof(QuantizationOptions.ComputeDtype), "Int32", () => new QuantizationOptions { ComputeDtype = ScalarType.Int32 } },
        { "float64 compute dtype", nameof(QuantizationOptions.ComputeDtype), "Float64", () => new QuantizationOptions { ComputeDtype = ScalarType.Float64 } },
        { "null exclusion list", nameof(QuantizationOptions.Exclude), "null", () => new QuantizationOptions { Exclude = null! } },
        { "empty excluded name", nameof(QuantizationOptions.Exclude), "''", () => new QuantizationOptions { Exclude = new[] { "lm_head", "" } } },
        { "blank excluded name", nameof(QuantizationOptions.Exclude), "' '", () => new QuantizationOptions { Exclude = new[] { " " } } },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadOption_ThrowsWhereItIsSet_NamingTheOptionAndValue(string row, string option, string value, Func<QuantizationOptions> build)
    {
        _ = row; // names the row
        var e = Assert.ThrowsAny<ArgumentException>(build);
        Assert.Equal(option, e.ParamName);
        if (value != "null") Assert.Contains(value, e.Message);
    }

    [Fact]
    public void Defaults_AreQLoras()
    {
        var o = new QuantizationOptions();
        Assert.Equal(QuantType.Nf4, o.Type);
        Assert.Equal(64, o.BlockSize);
        Assert.True(o.DoubleQuant);
        Assert.Null(o.ComputeDtype);
        Assert.Equal(new[] { "lm_head" }, o.Exclude);
    }

    [Fact]
    public void Exclude_IsCopied_SoLaterChangesToTheCallersListDoNotReachTheOptions()
    {
        var names = new List<string> { "lm_head" };
        var o = new QuantizationOptions { Exclude = names };
        names.Add("");
        Assert.Equal(new[] { "lm_head" }, o.Exclude);
    }

    [Fact]
    public void With_ValidatesToo()
    {
        var o = new QuantizationOptions();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => o with { BlockSize = 100 });
        Assert.Equal(nameof(QuantizationOptions.BlockSize), e.ParamName);
    }
}
