using LongContext.Llama.Evaluation;
using LongContext.Tests.Support;

namespace LongContext.Tests.Evaluation;

/// <summary>The lengths of <see cref="PasskeyOptions"/> and <see cref="PerplexityOptions"/>: one rule, each record's own minimum and message.</summary>
[Trait(Category.Name, Category.Model)]
public sealed class EvaluationLengthsTests
{
    /// <summary>(record, its least length, what its message says every length must be).</summary>
    public static TheoryData<string, int, string> Records => new()
    {
        { nameof(PasskeyOptions), 1, "positive lengths" },
        { nameof(PerplexityOptions), 2, "lengths of at least 2 tokens" },
    };

    /// <summary>(record, its least length).</summary>
    public static TheoryData<string, int> Minimums()
    {
        var data = new TheoryData<string, int>();
        foreach (object[] row in Records) data.Add((string)row[0], (int)row[1]);
        return data;
    }

    private static IReadOnlyList<int> Set(string record, IReadOnlyList<int> lengths) => record == nameof(PasskeyOptions)
        ? new PasskeyOptions { Lengths = lengths }.Lengths
        : new PerplexityOptions { Lengths = lengths }.Lengths;

    [Theory]
    [MemberData(nameof(Minimums))]
    public void Lengths_AtTheMinimumAndAbove_AreKeptAsACopy(string record, int minimum)
    {
        var given = new List<int> { minimum, minimum + 1, 4096 };
        IReadOnlyList<int> kept = Set(record, given);
        given[0] = -5;
        Assert.Equal([minimum, minimum + 1, 4096], kept);
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void Lengths_BelowTheMinimum_NamesThePropertyTheValueAndTheRule(string record, int minimum, string expected)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Set(record, [minimum, minimum - 1]));
        Assert.Equal("Lengths", e.ParamName);
        Assert.Equal(minimum - 1, e.ActualValue);
        Assert.StartsWith($"Lengths must hold {expected}; got {minimum - 1}.", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Minimums))]
    public void Lengths_EmptyOrNull_AreRefusedNamingTheProperty(string record, int minimum)
    {
        Assert.Equal(minimum, Set(record, [minimum]).Single());
        var empty = Assert.Throws<ArgumentException>(() => Set(record, []));
        Assert.Equal("Lengths", empty.ParamName);
        Assert.StartsWith("Lengths must hold at least one length.", empty.Message, StringComparison.Ordinal);
        var none = Assert.Throws<ArgumentNullException>(() => Set(record, null!));
        Assert.Equal("Lengths", none.ParamName);
    }

    [Theory]
    [MemberData(nameof(Minimums))]
    public void Lengths_GivenTwice_AreRefusedNamingTheLength(string record, int minimum)
    {
        var e = Assert.Throws<ArgumentException>(() => Set(record, [minimum + 1, 4096, minimum + 1]));
        Assert.Equal("Lengths", e.ParamName);
        Assert.StartsWith($"Lengths holds {minimum + 1} more than once ([{minimum + 1}, 4096, {minimum + 1}]); each length is measured once.", e.Message, StringComparison.Ordinal);
    }
}
