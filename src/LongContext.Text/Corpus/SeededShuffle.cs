namespace LongContext.Text.Corpus;

/// <summary>
/// A seeded permutation that is the same on every platform and .NET version: Fisher–Yates driven by SplitMix64
/// (Steele, Lea and Flood 2014), with Lemire's multiply-shift for the bounded draw (bias below 2^-32 for
/// n &lt; 2^32, irrelevant here). Pure.
/// </summary>
public static class SeededShuffle
{
    /// <summary>A permutation of 0..count-1 for a seed.</summary>
    /// <param name="count">Number of items; non-negative.</param>
    /// <param name="seed">The seed; equal seeds give equal permutations.</param>
    public static int[] Permutation(int count, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var p = new int[count];
        for (int i = 0; i < count; i++) p[i] = i;
        ulong state = seed;
        for (int i = count - 1; i > 0; i--)
        {
            ulong r = Next(ref state);
            int j = (int)(((r >> 32) * (ulong)(i + 1)) >> 32);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    private static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
