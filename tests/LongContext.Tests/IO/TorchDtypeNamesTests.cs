using LongContext.IO;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.IO;

/// <summary>PyTorch's dtype names: the pairs as PyTorch prints them, both directions, and nothing else parsed.</summary>
[Trait(Category.Name, Category.Build)]
public sealed class TorchDtypeNamesTests
{
    /// <summary><c>str(dtype)</c> in PyTorch, less <c>torch.</c>, for each dtype TorchSharp has.</summary>
    public static TheoryData<string, ScalarType> PyTorchNames => new()
    {
        { "float32", ScalarType.Float32 }, { "float16", ScalarType.Float16 }, { "bfloat16", ScalarType.BFloat16 },
        { "float64", ScalarType.Float64 }, { "uint8", ScalarType.Byte }, { "int8", ScalarType.Int8 },
        { "int16", ScalarType.Int16 }, { "int32", ScalarType.Int32 }, { "int64", ScalarType.Int64 },
        { "bool", ScalarType.Bool }, { "complex64", ScalarType.ComplexFloat32 }, { "complex128", ScalarType.ComplexFloat64 },
        { "qint8", ScalarType.QInt8 }, { "quint8", ScalarType.QUInt8 }, { "qint32", ScalarType.QInt32 },
    };

    [Theory]
    [MemberData(nameof(PyTorchNames))]
    public void NameAndTryParse_AreEachOthersInverse(string name, ScalarType dtype)
    {
        Assert.Equal(name, TorchDtypeNames.Name(dtype));
        Assert.True(TorchDtypeNames.TryParse(name, out ScalarType parsed));
        Assert.Equal(dtype, parsed);
    }

    [Fact]
    public void Name_CoversEveryTorchSharpDtype_WithDistinctNames()
    {
        ScalarType[] all = Enum.GetValues<ScalarType>();
        string[] names = all.Select(TorchDtypeNames.Name).ToArray();
        Assert.Equal(names.Length, names.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(all.Order(), PyTorchNames.Select(row => (ScalarType)row[1]).Order());
    }

    [Theory]
    [InlineData("an alias", "float")]
    [InlineData("an alias", "half")]
    [InlineData("an alias", "double")]
    [InlineData("the safetensors name", "F32")]
    [InlineData("the safetensors name", "BF16")]
    [InlineData("another case", "Float32")]
    [InlineData("with the module prefix", "torch.float32")]
    [InlineData("padded", " float32")]
    [InlineData("empty", "")]
    [InlineData("null", null)]
    public void TryParse_RefusesAnythingButTheCanonicalName(string why, string? name)
    {
        Assert.False(TorchDtypeNames.TryParse(name, out ScalarType dtype), why);
        Assert.Equal(default, dtype);
    }

    [Fact]
    public void Name_OfAValueTorchSharpDoesNotDefine_Throws()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TorchDtypeNames.Name((ScalarType)99));
        Assert.Equal("dtype", e.ParamName);
    }
}
