using LongContext.Tests.Support;
using LongContext.Training;

namespace LongContext.Tests.Training;

[Trait(Category.Name, Category.Model)]
public sealed class PositionInterpolationTests
{
    [Theory]
    [InlineData(8192, 2048, 4)]      // LongLoRA 7B 2k -> 8k
    [InlineData(100000, 4096, 25)]   // ceil(24.41)
    [InlineData(4097, 4096, 2)]
    [InlineData(4096, 4096, 1)]
    [InlineData(1000, 4096, 1)]
    public void Factor_IsCeilOfTheRatio(int target, int original, int expected)
        => Assert.Equal(expected, PositionInterpolation.Factor(target, original));

    [Fact]
    public void Factor_NonPositiveTarget_ThrowsNamingIt()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => PositionInterpolation.Factor(0, 2048));
        Assert.Equal("targetContextLength", ex.ParamName);
        Assert.Contains("got 0", ex.Message, StringComparison.Ordinal);
    }
}
