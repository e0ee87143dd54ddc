using LongContext.Attention;
using LongContext.Tests.Support;

namespace LongContext.Tests.Attention;

[Trait(Category.Name, Category.Attention)]
public sealed class S2GroupLayoutTests
{
    private static (int Start, int Length)[][] Flat(IReadOnlyList<IReadOnlyList<SequenceSegment>> groups)
        => groups.Select(g => g.Select(s => (s.Start, s.Length)).ToArray()).ToArray();

    public static TheoryData<string, int, double, int> GroupSizes() => new()
    {
        { "LongLoRA's quarter at 2048", 2048, 0.25, 512 },
        { "an eighth at 96", 96, 0.125, 12 },
        { "one group (ratio 1)", 64, 1.0, 64 },
        { "100 * 0.1 = 10.000000000000002 in binary, floored as LongLoRA's int()", 100, 0.1, 10 },
    };

    [Theory]
    [MemberData(nameof(GroupSizes))]
    public void GroupSize_IsFloorOfNTimesRatio(string name, int n, double ratio, int expected)
        => Assert.True(S2GroupLayout.GroupSize(n, ratio) == expected, $"{name}: {S2GroupLayout.GroupSize(n, ratio)}, expected {expected}");

    [Fact]
    public void Unshifted_ArePlainConsecutiveGroups()
        => Assert.Equal(new[] { new[] { (0, 4) }, new[] { (4, 4) }, new[] { (8, 4) } },
            Flat(S2GroupLayout.Groups(12, 4, shifted: false, S2WrapPolicy.NoWrap)));

    [Fact]
    public void ShiftedNoWrap_HasHalfGroupsAtBothEnds()
        => Assert.Equal(new[] { new[] { (0, 2) }, new[] { (2, 4) }, new[] { (6, 4) }, new[] { (10, 2) } },
            Flat(S2GroupLayout.Groups(12, 4, shifted: true, S2WrapPolicy.NoWrap)));

    [Fact]
    public void ShiftedRoll_LastGroupIsTheTailFollowedByTheHead()
        => Assert.Equal(new[] { new[] { (2, 4) }, new[] { (6, 4) }, new[] { (10, 2), (0, 2) } },
            Flat(S2GroupLayout.Groups(12, 4, shifted: true, S2WrapPolicy.Roll)));

    [Theory]
    [InlineData(S2WrapPolicy.NoWrap)]
    [InlineData(S2WrapPolicy.Roll)]
    public void SingleGroup_IsNotShifted(S2WrapPolicy policy)
        => Assert.Equal(new[] { new[] { (0, 8) } }, Flat(S2GroupLayout.Groups(8, 8, shifted: true, policy)));

    public static TheoryData<string, S2WrapPolicy, int, int> Layouts() => new()
    {
        { "no-wrap, 3 groups of 4", S2WrapPolicy.NoWrap, 12, 4 },
        { "roll, 3 groups of 4", S2WrapPolicy.Roll, 12, 4 },
        { "no-wrap, 8 groups of 12", S2WrapPolicy.NoWrap, 96, 12 },
        { "roll, 8 groups of 12", S2WrapPolicy.Roll, 96, 12 },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Groups_CoverEveryPositionExactlyOnce(string name, S2WrapPolicy policy, int n, int g)
    {
        foreach (bool shifted in new[] { false, true })
        {
            var positions = S2GroupLayout.Groups(n, g, shifted, policy).SelectMany(gr => gr).SelectMany(s => Enumerable.Range(s.Start, s.Length)).Order();
            Assert.True(Enumerable.Range(0, n).SequenceEqual(positions), $"{name}, shifted {shifted}");
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void AllowedMask_EqualsTheMaskFromS2sDefinition(string name, S2WrapPolicy policy, int n, int g)
    {
        using var mask = S2GroupLayout.AllowedMask(4, n, g / (double)n, policy);
        using var definition = AttentionReference.S2Mask(4, n, g / (double)n, policy);
        TensorAssert.Equal(mask, definition, name);
    }

    [Fact]
    public void AllowedMask_MatchesHandWrittenRollPattern()
    {
        // N = 4, G = 2 (ratio 0.5), H = 2: head 0 groups {0,1},{2,3}; head 1 (roll) groups {1,2}, {3 then 0}.
        using var mask = S2GroupLayout.AllowedMask(2, 4, 0.5, S2WrapPolicy.Roll);
        var expected = new bool[]
        {
            true, false, false, false,  true, true, false, false,  false, false, true, false,  false, false, true, true,
            true, false, false, true,   false, true, false, false, false, true, true, false,   false, false, false, true,
        };
        TensorAssert.Equal(mask, TorchSharp.torch.tensor(expected, new long[] { 2, 4, 4 }), "roll mask N=4 G=2");
    }
}
