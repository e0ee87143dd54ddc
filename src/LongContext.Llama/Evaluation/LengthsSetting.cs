namespace LongContext.Llama.Evaluation;

/// <summary>
/// The rule of a settings record's list of lengths (<see cref="PasskeyOptions.Lengths"/>,
/// <see cref="PerplexityOptions.Lengths"/>): given, at least one, each at least a minimum, none twice (each length is
/// measured once; a repeated one would only repeat its rows in the results); the record keeps a copy.
/// </summary>
internal static class LengthsSetting
{
    /// <summary>A copy of <paramref name="value"/> once checked.</summary>
    /// <param name="value">The lengths set.</param>
    /// <param name="minimum">The least length allowed.</param>
    /// <param name="expected">What every length must be, for the message (e.g. "positive lengths").</param>
    /// <param name="property">The property set, named in the messages and as the parameter.</param>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="value"/> is empty or holds a length twice.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A length is below <paramref name="minimum"/>.</exception>
    public static int[] Checked(IReadOnlyList<int> value, int minimum, string expected, string property)
    {
        ArgumentNullException.ThrowIfNull(value, property);
        if (value.Count == 0) throw new ArgumentException($"{property} must hold at least one length.", property);
        foreach (int l in value)
            if (l < minimum) throw new ArgumentOutOfRangeException(property, l, $"{property} must hold {expected}; got {l}.");
        int? repeated = value.GroupBy(l => l).Where(g => g.Count() > 1).Select(g => (int?)g.Key).FirstOrDefault();
        if (repeated is { } twice)
            throw new ArgumentException($"{property} holds {twice} more than once ([{string.Join(", ", value)}]); each length is measured once.", property);
        return value.ToArray();
    }
}
