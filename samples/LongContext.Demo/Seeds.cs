namespace LongContext.Demo;

/// <summary>Stable seed derivation (unlike <see cref="HashCode"/>, the same in every process).</summary>
public static class Seeds
{
    /// <summary>A seed for one data stream, from the run seed, a tag and a length (FNV-1a).</summary>
    /// <param name="seed">The run's seed.</param>
    /// <param name="tag">Names the stream (run name, "eval").</param>
    /// <param name="length">Sequence length of the stream.</param>
    /// <returns>A non-negative seed.</returns>
    public static int Derive(int seed, string tag, int length)
    {
        ArgumentNullException.ThrowIfNull(tag);
        uint h = 2166136261;
        void Mix(int v) { for (int i = 0; i < 4; i++) { h ^= (byte)(v >> (8 * i)); h *= 16777619; } }
        Mix(seed);
        foreach (char c in tag) Mix(c);
        Mix(length);
        return (int)(h & 0x7fffffff);
    }
}
