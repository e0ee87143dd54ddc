namespace LongContext.Llama.Evaluation;

/// <summary>
/// numpy's legacy <c>RandomState</c> as far as LongLoRA's passkey script uses it: <c>seed(int)</c> (MT19937
/// <c>init_genrand</c>) and <c>randint(low, high)</c> for ranges below 2^32 (the masked rejection sampler
/// <c>buffered_bounded_masked_uint32</c>), so prompts and keys equal the script's for the same seed.
/// </summary>
internal sealed class NumpyLegacyRandom
{
    private const int N = 624, M = 397;
    private readonly uint[] mt = new uint[N];
    private int index;

    /// <summary><c>numpy.random.seed(seed)</c> for a seed in [0, 2^32).</summary>
    public NumpyLegacyRandom(uint seed)
    {
        mt[0] = seed;
        for (int i = 1; i < N; i++) mt[i] = unchecked(1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + (uint)i);
        index = N;
    }

    /// <summary><c>randint(low, high)</c>: a value in [low, high); high - low - 1 must be below 2^32.</summary>
    public long RandInt(long low, long high)
    {
        if (high <= low) throw new ArgumentOutOfRangeException(nameof(high), high, $"high must exceed low ({low}); got {high}.");
        ulong range = (ulong)(high - 1 - low);
        if (range == 0) return low;
        if (range > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(high), high, "ranges of 2^32 or more are not implemented.");
        if (range == uint.MaxValue) return low + NextUInt32();
        uint mask = (uint)range;
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16;
        uint value;
        while ((value = NextUInt32() & mask) > range) { }
        return low + value;
    }

    /// <summary>MT19937 <c>genrand_int32</c>.</summary>
    public uint NextUInt32()
    {
        if (index >= N) Twist();
        uint y = mt[index++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }

    private void Twist()
    {
        for (int i = 0; i < N; i++)
        {
            uint y = (mt[i] & 0x80000000u) | (mt[(i + 1) % N] & 0x7fffffffu);
            mt[i] = mt[(i + M) % N] ^ (y >> 1) ^ ((y & 1u) != 0 ? 0x9908b0dfu : 0u);
        }
        index = 0;
    }
}
