using static TorchSharp.torch;

namespace LongContext.Attention;

/// <summary>A run of consecutive token positions [Start, Start + Length).</summary>
/// <param name="Start">First position.</param>
/// <param name="Length">Number of positions.</param>
public readonly record struct SequenceSegment(int Start, int Length);

/// <summary>
/// The pure group arithmetic of S2-Attn: which positions each half of the heads attends together. A group is a list
/// of segments in causal order (a token sees the tokens of its group that come no later in that order).
/// </summary>
public static class S2GroupLayout
{
    /// <summary>
    /// Group size G = floor(N * ratio), as LongLoRA computes it, validated: G must be positive, divide N and be even
    /// (the shifted heads move by G/2).
    /// </summary>
    /// <param name="sequenceLength">N, the sequence length.</param>
    /// <param name="groupSizeRatio">Fraction of N per group, in (0, 1].</param>
    /// <exception cref="ArgumentException">When the group size is zero, odd, or does not divide N.</exception>
    public static int GroupSize(long sequenceLength, double groupSizeRatio)
    {
        Guard.Positive(sequenceLength);
        if (!(groupSizeRatio > 0 && groupSizeRatio <= 1))
            throw new ArgumentOutOfRangeException(nameof(groupSizeRatio), groupSizeRatio, $"{nameof(groupSizeRatio)} must be in (0, 1]; got {groupSizeRatio}.");
        long g = (long)Math.Floor(sequenceLength * groupSizeRatio);
        if (g < 2)
            throw new ArgumentException(
                $"S2 group size floor(sequenceLength * groupSizeRatio) = floor({sequenceLength} * {groupSizeRatio}) = {g} is too small; it must be an even number >= 2.",
                nameof(groupSizeRatio));
        if (sequenceLength % g != 0)
            throw new ArgumentException(
                $"Sequence length {sequenceLength} is not divisible by the S2 group size {g} (= floor({sequenceLength} * groupSizeRatio {groupSizeRatio})).",
                nameof(sequenceLength));
        if (g % 2 != 0)
            throw new ArgumentException(
                $"S2 group size {g} (= floor({sequenceLength} * groupSizeRatio {groupSizeRatio})) must be even: the shifted heads move by half a group.",
                nameof(groupSizeRatio));
        return checked((int)g);
    }

    /// <summary>
    /// The groups of one half of the heads. Unshifted heads (and any head when G = N, a single group, where S2 is
    /// full causal attention): [iG, (i+1)G). Shifted heads, <see cref="S2WrapPolicy.NoWrap"/>: [0, G/2),
    /// [G/2 + iG, G/2 + (i+1)G), [N - G/2, N). Shifted heads, <see cref="S2WrapPolicy.Roll"/>: [G/2 + iG, G/2 + (i+1)G)
    /// and a last group [N - G/2, N) followed by [0, G/2) in causal order.
    /// </summary>
    /// <param name="sequenceLength">N.</param>
    /// <param name="groupSize">G, even, dividing N (see <see cref="GroupSize"/>).</param>
    /// <param name="shifted">True for heads [H/2, H).</param>
    /// <param name="policy">Wrap policy of the shifted heads.</param>
    /// <returns>Groups in position order; each group's segments in causal order.</returns>
    public static IReadOnlyList<IReadOnlyList<SequenceSegment>> Groups(int sequenceLength, int groupSize, bool shifted, S2WrapPolicy policy)
    {
        Guard.Positive(sequenceLength);
        Guard.Positive(groupSize);
        if (sequenceLength % groupSize != 0 || groupSize % 2 != 0)
            throw new ArgumentException($"groupSize must be even and divide sequenceLength {sequenceLength}; got {groupSize}.", nameof(groupSize));
        int n = sequenceLength, g = groupSize, half = g / 2, count = n / g;
        var groups = new List<IReadOnlyList<SequenceSegment>>();
        if (!shifted || count == 1)
        {
            for (int i = 0; i < count; i++) groups.Add(new[] { new SequenceSegment(i * g, g) });
            return groups;
        }
        if (policy == S2WrapPolicy.NoWrap) groups.Add(new[] { new SequenceSegment(0, half) });
        for (int i = 0; i < count - 1; i++) groups.Add(new[] { new SequenceSegment(half + i * g, g) });
        groups.Add(policy == S2WrapPolicy.NoWrap
            ? new[] { new SequenceSegment(n - half, half) }
            : new[] { new SequenceSegment(n - half, half), new SequenceSegment(0, half) });
        return groups;
    }

    /// <summary>
    /// Explicit boolean mask of what each query may attend under S2, for reference computations and tests:
    /// shape (H, N, N), true where query i (dim 1) may see key j (dim 2). Heads [0, H/2) unshifted, [H/2, H) shifted.
    /// </summary>
    /// <param name="numHeads">H, even.</param>
    /// <param name="sequenceLength">N.</param>
    /// <param name="groupSizeRatio">Group size ratio (see <see cref="GroupSize"/>).</param>
    /// <param name="policy">Wrap policy of the shifted heads.</param>
    /// <param name="device">Device of the mask; CPU when null.</param>
    public static Tensor AllowedMask(int numHeads, int sequenceLength, double groupSizeRatio, S2WrapPolicy policy, Device? device = null)
    {
        Guard.Positive(numHeads);
        if (numHeads % 2 != 0)
            throw new ArgumentException($"S2 needs an even number of heads; numHeads = {numHeads}.", nameof(numHeads));
        int g = GroupSize(sequenceLength, groupSizeRatio);
        var halves = new[] { HalfMask(sequenceLength, Groups(sequenceLength, g, false, policy)), HalfMask(sequenceLength, Groups(sequenceLength, g, true, policy)) };
        var data = new bool[(long)numHeads * sequenceLength * sequenceLength];
        long plane = (long)sequenceLength * sequenceLength;
        for (int h = 0; h < numHeads; h++) Array.Copy(halves[h < numHeads / 2 ? 0 : 1], 0, data, h * plane, plane);
        var mask = tensor(data, new long[] { numHeads, sequenceLength, sequenceLength });
        return device is null ? mask : mask.to(device);
    }

    /// <summary>The causal mask (N, N) of full attention: true where key j &lt;= query i.</summary>
    /// <param name="sequenceLength">N.</param>
    /// <param name="device">Device of the mask; CPU when null.</param>
    public static Tensor CausalMask(int sequenceLength, Device? device = null)
        => ones(new long[] { Guard.Positive(sequenceLength), sequenceLength }, ScalarType.Bool, device).tril();

    private static bool[] HalfMask(int n, IReadOnlyList<IReadOnlyList<SequenceSegment>> groups)
    {
        var allowed = new bool[(long)n * n];
        foreach (var group in groups)
        {
            var order = group.SelectMany(s => Enumerable.Range(s.Start, s.Length)).ToArray();
            for (int a = 0; a < order.Length; a++)
                for (int b = 0; b <= a; b++)
                    allowed[(long)order[a] * n + order[b]] = true;
        }
        return allowed;
    }
}
