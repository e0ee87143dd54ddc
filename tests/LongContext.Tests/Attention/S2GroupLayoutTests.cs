using LongContext.Attention;
using LongContext.Tests.Support;

namespace LongContext.Tests.Attention;

[Trait(Category.Name, Category.Attention)]
public sealed class S2GroupLayoutTests
{
    private static (int Start, int Length)[][] Flat(IReadOnlyList<IReadOnlyList<SequenceSegment>> groups)
        => groups.Select(g => g.Select(s => (s.Start, s.Length)).ToArray()).ToArray();

    [Theory]
    [InlineData(2048, 0.25, 512)]
    [InlineData(96, 0.125, 12)]
    [InlineData(64, 1.0, 64)]
    [InlineData(100, 0.1, 10)] // 100 * 0.1 = 10.000000000000002 in binary; floor as LongLoRA's int()
    public void GroupSize_IsFloorOfNTimesRatio(int n, double ratio, int expected)
        => Assert.Equal(expected, S2GroupLayout.GroupSize(n, ratio));

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

    [Theory]
    [InlineData(S2WrapPolicy.NoWrap, 12, 4)]
    [InlineData(S2WrapPolicy.Roll, 12, 4)]
    [InlineData(S2WrapPolicy.NoWrap, 96, 12)]
    [InlineData(S2WrapPolicy.Roll, 96, 12)]
    public void Groups_CoverEveryPositionExactlyOnce(S2WrapPolicy policy, int n, int g)
    {
        foreach (bool shifted in new[] { false, true })
        {
            var positions = S2GroupLayout.Groups(n, g, shifted, policy).SelectMany(gr => gr).SelectMany(s => Enumerable.Range(s.Start, s.Length)).Order();
            Assert.Equal(Enumerable.Range(0, n), positions);
        }
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
