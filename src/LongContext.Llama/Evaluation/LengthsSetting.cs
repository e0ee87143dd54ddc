namespace LongContext.Llama.Evaluation;

/// <summary>
/// The rule of a settings record's list of lengths (<see cref="PasskeyOptions.Lengths"/>,
/// <see cref="PerplexityOptions.Lengths"/>): given, at least one, each at least a minimum; the record keeps a copy.
/// </summary>
internal static class LengthsSetting
{
    /// <summary>A copy of <paramref name="value"/> once checked.</summary>
    /// <param name="value">The lengths set.</param>
    /// <param name="minimum">The least length allowed.</param>
    /// <param name="expected">What every length must be, for the message (e.g. "positive lengths").</param>
    /// <param name="property">The property set, named in the messages and as the parameter.</param>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="value"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A length is below <paramref name="minimum"/>.</exception>
    public static int[] Checked(IReadOnlyList<int> value, int minimum, string expected, string property)
    {
        ArgumentNullException.ThrowIfNull(value, property);
        if (value.Count == 0) throw new ArgumentException($"{property} must hold at least one length.", property);
        foreach (int l in value)
            if (l < minimum) throw new ArgumentOutOfRangeException(property, l, $"{property} must hold {expected}; got {l}.");
        return value.ToArray();
    }
}
