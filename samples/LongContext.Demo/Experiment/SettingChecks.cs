using System.Globalization;
using System.Runtime.CompilerServices;

namespace LongContext.Demo.Experiment;

/// <summary>A setting of <see cref="PretrainSettings"/> or <see cref="ExperimentSettings"/> outside its range.</summary>
/// <param name="setting">The property.</param>
/// <param name="value">The value given.</param>
/// <param name="expected">What it must be ("at least 1").</param>
public sealed class SettingOutOfRangeException(string setting, object value, string expected)
    : ArgumentOutOfRangeException(setting, value, string.Create(CultureInfo.InvariantCulture, $"{setting} must be {expected}; got {value}."))
{
    /// <summary>What the value must be.</summary>
    public string Expected { get; } = expected;
}

/// <summary>The range checks the settings records run in their <c>init</c> accessors (the caller's name is the property's).</summary>
internal static class SettingChecks
{
    /// <summary><paramref name="value"/> if at least <paramref name="min"/>.</summary>
    public static int AtLeast(int value, int min, [CallerMemberName] string name = "") =>
        value >= min ? value : throw Bad(value, string.Create(CultureInfo.InvariantCulture, $"at least {min}"), name);

    /// <summary><paramref name="value"/> if finite and positive.</summary>
    public static double Positive(double value, [CallerMemberName] string name = "") =>
        double.IsFinite(value) && value > 0 ? value : throw Bad(value, "a positive number", name);

    /// <summary><paramref name="value"/> if in [0, 1).</summary>
    public static double Fraction(double value, [CallerMemberName] string name = "") =>
        value is >= 0 and < 1 ? value : throw Bad(value, "in [0, 1)", name);

    /// <summary>
    /// Checks that <paramref name="steps"/> updates of <paramref name="tokensPerStep"/> tokens fit one array (the
    /// training rows are built in one; <see cref="Array.MaxLength"/> elements).
    /// </summary>
    /// <param name="steps">Updates.</param>
    /// <param name="tokensPerStep">Tokens per update.</param>
    /// <param name="per">How the tokens per update arise, for the message ("with Batch 4 at 512 tokens").</param>
    /// <param name="name">The property of <paramref name="steps"/>.</param>
    public static void FitOneArray(int steps, long tokensPerStep, string per, string name)
    {
        if (steps * tokensPerStep > Array.MaxLength)
            throw Bad(steps, string.Create(CultureInfo.InvariantCulture,
                $"at most {Array.MaxLength / tokensPerStep} {per} (the training tokens are held in one array of at most {Array.MaxLength})"), name);
    }

    /// <summary>The exception for a value out of range.</summary>
    public static SettingOutOfRangeException Bad(object value, string expected, [CallerMemberName] string name = "") => new(name, value, expected);
}
