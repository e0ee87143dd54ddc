using System.Runtime.CompilerServices;

namespace LongContext;

/// <summary>Argument checks with messages that name the parameter, the value and what was expected.</summary>
internal static class Guard
{
    public static int Positive(int value, [CallerArgumentExpression(nameof(value))] string? name = null)
        => value > 0 ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive; got {value}.");

    public static long Positive(long value, [CallerArgumentExpression(nameof(value))] string? name = null)
        => value > 0 ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive; got {value}.");

    public static double Positive(double value, [CallerArgumentExpression(nameof(value))] string? name = null)
        => value > 0 && double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be a positive finite number; got {value}.");

    /// <summary>A dropout probability: in [0, 1) (1 would drop everything; NaN is refused).</summary>
    public static double DropoutProbability(double value, [CallerArgumentExpression(nameof(value))] string? name = null)
        => value >= 0 && value < 1 ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1); got {value}.");

    public static T NotNull<T>(T? value, [CallerArgumentExpression(nameof(value))] string? name = null) where T : class
        => value ?? throw new ArgumentNullException(name);
}
