using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Demo;

/// <summary>
/// Synthetic key-value retrieval. A sequence of N tokens holds N/8 <c>key value</c> pairs with distinct keys at
/// random places among filler tokens, then N/16 queries at the end that repeat keys from anywhere before; after each
/// queried key the model must predict its value (<c>f f k1 v1 f f k2 v2 ... q1 a1 q2 a2</c>). Every key has its own
/// <see cref="Values"/> value tokens, so one attention lookup can solve it, and the answer may lie up to the whole
/// context away. Only the answers are scored.
/// </summary>
public sealed class KeyValueRetrievalTask
{
    /// <summary>Label value that the loss ignores (HF convention).</summary>
    public const long Ignore = -100;

    /// <summary>Number of distinct filler tokens.</summary>
    public const int Fillers = 16;

    /// <summary>Creates the task for sequences up to <paramref name="maxLength"/> tokens.</summary>
    /// <param name="maxLength">Longest sequence that will be generated (sets the number of distinct keys, N/4).</param>
    /// <param name="values">Number of values per key (chance accuracy is 1 / values).</param>
    public KeyValueRetrievalTask(int maxLength, int values)
    {
        if (maxLength < 16) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "the longest sequence must hold at least 16 tokens.");
        if (values < 2) throw new ArgumentOutOfRangeException(nameof(values), values, "at least 2 values per key are needed.");
        Keys = maxLength / 4;
        Values = values;
    }

    /// <summary>Number of distinct keys (token ids 0..Keys-1).</summary>
    public int Keys { get; }

    /// <summary>Number of values each key can take (chance accuracy is 1 / Values); key k's values are the token
    /// ids Keys + k x Values + j, j in [0, Values).</summary>
    public int Values { get; }

    /// <summary>Token ids used: keys, their values, then the fillers.</summary>
    public int VocabSize => Keys + Keys * Values + Fillers;

    /// <summary>Number of queries at the end of a sequence of <paramref name="length"/> tokens.</summary>
    /// <param name="length">Sequence length.</param>
    /// <returns>One per sixteen tokens.</returns>
    public static int QueryCount(int length) => Math.Max(1, length / 16);

    /// <summary>Number of pairs before the queries.</summary>
    /// <param name="length">Sequence length.</param>
    /// <returns>One per eight tokens.</returns>
    public static int PairCount(int length) => Math.Max(QueryCount(length), length / 8);

    /// <summary>Draws <paramref name="count"/> sequences of <paramref name="length"/> tokens.</summary>
    /// <param name="count">Batch size.</param>
    /// <param name="length">Sequence length N: even, from 16 to 4 x <see cref="Keys"/>.</param>
    /// <param name="random">Seeded source of the data.</param>
    /// <param name="device">Where the tensors go.</param>
    /// <returns>Input ids (count, N) int64 and labels (count, N) int64, aligned with the inputs (the model shifts
    /// them): the value token of each query answer, <see cref="Ignore"/> elsewhere.</returns>
    public (Tensor Ids, Tensor Labels) Batch(int count, int length, Random random, Device device)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (length % 2 != 0 || length < 16 || length > 4 * Keys)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"sequences must have an even length from 16 to {4 * Keys} tokens.");
        int slots = length / 2, queries = QueryCount(length), pairs = PairCount(length), body = slots - queries;
        var ids = new long[count * length];
        var labels = new long[count * length];
        Array.Fill(labels, Ignore);
        var keys = Enumerable.Range(0, Keys).ToArray();
        var bodySlots = Enumerable.Range(0, body).ToArray();
        var pairAt = new int[body];
        var values = new long[pairs];
        var asked = Enumerable.Range(0, pairs).ToArray();
        for (int b = 0; b < count; b++)
        {
            random.Shuffle(keys);
            random.Shuffle(bodySlots);
            random.Shuffle(asked);
            Array.Fill(pairAt, -1);
            for (int p = 0; p < pairs; p++) pairAt[bodySlots[p]] = p;
            int t = b * length;
            for (int s = 0; s < body; s++, t += 2)
            {
                int p = pairAt[s];
                if (p < 0)
                {
                    ids[t] = Filler(random);
                    ids[t + 1] = Filler(random);
                    continue;
                }
                values[p] = Keys + keys[p] * Values + random.Next(Values);
                ids[t] = keys[p];
                ids[t + 1] = values[p];
            }
            for (int q = 0; q < queries; q++, t += 2)
            {
                int p = asked[q];
                ids[t] = keys[p];
                ids[t + 1] = labels[t + 1] = values[p];
            }
        }
        return (torch.tensor(ids, [count, length], device: device), torch.tensor(labels, [count, length], device: device));
    }

    private long Filler(Random random) => Keys + Keys * Values + random.Next(Fillers);
}
