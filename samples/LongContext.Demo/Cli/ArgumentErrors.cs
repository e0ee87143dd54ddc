using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Spectre.Console.Cli;

namespace LongContext.Demo.Cli;

/// <summary>
/// The program's wording for errors that do not come from a settings class's <c>Validate</c>: the parser's conversion
/// failures ("--x must be ...; got ...") and the exceptions a run ends in.
/// </summary>
public static partial class ArgumentErrors
{
    [GeneratedRegex(@"^Failed to convert '(?<value>.*)' to (?<type>[^ ]+)\.$", RegexOptions.Singleline)]
    private static partial Regex ConversionFailure();

    /// <summary>
    /// The parser's "Failed to convert 'X' to T." as "--option must be an integer; got 'X'.", the option found on the
    /// command line and what it takes found on the settings property that declares it; any other message unchanged.
    /// </summary>
    /// <param name="message">The parser's message.</param>
    /// <param name="args">The command line.</param>
    public static string Describe(string message, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(args);
        Match m = ConversionFailure().Match(message);
        if (!m.Success) return message;
        string value = m.Groups["value"].Value;
        string? option = OptionWithValue(value, args);
        if (option is null) return message;
        return string.Create(CultureInfo.InvariantCulture, $"{option} must be {Expected(option)}; got '{value}'.");
    }

    /// <summary>
    /// The error of an option that takes a value given without one (last on the line, or followed by another option:
    /// the parser would take the name of its default command, "__default_command", as the value), or of a number option
    /// given an empty value (the parser would read '' as "not given" for the options whose default depends on others);
    /// null when there is none.
    /// </summary>
    /// <param name="args">The command line.</param>
    public static string? MissingValue(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        foreach (var (i, option, inline) in Options(args, "--"))
        {
            if (OptionType(option) is not { } type || type == typeof(bool)) continue;
            bool number = type == typeof(int) || type == typeof(double);
            if (inline is null && (i + 1 == args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal)))
                return number ? $"{option} needs a value, {Expected(option)}; got none."
                    : $"{option} needs a value; got none (a value that begins with -- is given as {option}=VALUE).";
            string value = inline ?? args[i + 1];
            if (value.Length == 0 && number) return $"{option} must be {Expected(option)}; got ''.";
        }
        return null;
    }

    /// <summary>
    /// The error of a whole-number option given anything but a plain decimal integer (ASCII digits, optionally after one
    /// + or - sign), or null: the parser's converter would read "0x10", "&amp;h10" and "#10" as hexadecimal 16 and
    /// " 16" without its spaces. A value too large for the option is left to the parser (<see cref="Describe"/>).
    /// </summary>
    /// <param name="args">The command line.</param>
    public static string? NotDecimal(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        foreach (var (i, option, inline) in Options(args, "--"))
        {
            if (OptionType(option) != typeof(int)) continue;
            string? value = inline ?? (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[i + 1] : null);
            if (value is null) continue;   // no value: MissingValue's error
            ReadOnlySpan<char> digits = value.StartsWith('+') || value.StartsWith('-') ? value.AsSpan(1) : value;
            if (digits.IsEmpty || digits.ContainsAnyExceptInRange('0', '9'))
                return string.Create(CultureInfo.InvariantCulture, $"{option} must be {Expected(option)}; got '{value}'.");
        }
        return null;
    }

    /// <summary>
    /// The error of an option that takes one value given more than once ("--steps 1 --steps 2": the parser keeps the
    /// last and would drop the others silently), or null; options declared as lists (<c>--corpus</c>) may repeat.
    /// </summary>
    /// <param name="args">The command line.</param>
    public static string? Repeated(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var values = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (i, option, inline) in Options(args, "--"))
        {
            if (OptionType(option) is not { } type || type == typeof(bool) || type.IsArray) continue;
            string value = inline ?? (i + 1 < args.Count ? args[i + 1] : "");
            if (!values.TryGetValue(option, out var list)) values[option] = list = [];
            list.Add(value);
        }
        return values.FirstOrDefault(kv => kv.Value.Count > 1) is { Key: { } repeated, Value: var given }
            ? $"{repeated} must be given once; got {string.Join(", ", given.Select(v => $"'{v}'"))}."
            : null;
    }

    /// <summary>
    /// Whether an exception is an expected way for a run to fail (a file, the data, the machine: the message says what),
    /// printed without a stack trace; any other exception is a defect of the program and keeps its trace.
    /// </summary>
    /// <param name="exception">What the run threw.</param>
    public static bool IsExpected(Exception exception) =>
        exception is IOException or InvalidDataException or NotSupportedException or UnauthorizedAccessException or OutOfMemoryException
        || IsTorchAllocationFailure(exception);

    /// <summary>
    /// Whether libtorch's allocator refused memory (CPU "can't allocate memory", CUDA "out of memory"): the machine is too
    /// small for the sizes asked for, not a defect. TorchSharp throws these as <see cref="ExternalException"/>.
    /// </summary>
    /// <param name="exception">What the run threw.</param>
    public static bool IsTorchAllocationFailure(Exception exception) =>
        exception is ExternalException e
        && (e.Message.Contains("can't allocate memory", StringComparison.Ordinal) || e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The message of an expected failure for the user: libtorch's native backtrace ("frame #0: ...", "Exception raised
    /// from ...") cut off, and an allocation failure said as such.
    /// </summary>
    /// <param name="exception">An exception <see cref="IsExpected"/> accepts.</param>
    public static string Brief(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        string message = string.Join("\n", exception.Message.Split('\n')
            .TakeWhile(line => !line.StartsWith("frame #", StringComparison.Ordinal) && !line.StartsWith("Exception raised from", StringComparison.Ordinal))).Trim();
        return IsTorchAllocationFailure(exception)
            ? $"out of memory: {message} (smaller sizes, e.g. --batch or the lengths, need less)"
            : message;
    }

    private static string? OptionWithValue(string value, IReadOnlyList<string> args)
    {
        foreach (var (i, option, inline) in Options(args, "-"))
            if (inline is not null ? inline == value : i + 1 < args.Count && args[i + 1] == value) return option;
        return null;
    }

    /// <summary>
    /// The options of a command line (arguments starting with <paramref name="prefix"/>): each with its position, its
    /// name and its value when written as <c>--name=value</c> (null otherwise: the value, if any, is the next argument).
    /// </summary>
    private static IEnumerable<(int Index, string Option, string? Inline)> Options(IReadOnlyList<string> args, string prefix)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (!a.StartsWith(prefix, StringComparison.Ordinal)) continue;
            int eq = a.IndexOf('=', StringComparison.Ordinal);
            yield return eq > 0 ? (i, a[..eq], a[(eq + 1)..]) : (i, a, null);
        }
    }

    /// <summary>The type an option's settings property holds (nullable unwrapped), or null when no command declares the option.</summary>
    private static Type? OptionType(string option)
    {
        string name = option.TrimStart('-');
        Type? type = typeof(ArgumentErrors).Assembly.GetTypes()
            .Where(t => typeof(CommandSettings).IsAssignableFrom(t))
            .SelectMany(t => t.GetProperties())
            .FirstOrDefault(p => p.GetCustomAttribute<CommandOptionAttribute>() is { } o && o.LongNames.Contains(name))?.PropertyType;
        return type is null ? null : Nullable.GetUnderlyingType(type) ?? type;
    }

    private static string Expected(string option)
    {
        Type? type = OptionType(option);
        return type == typeof(int) ? "an integer (at most 2147483647)"
            : type == typeof(double) ? "a number (e.g. 0.5 or 1e-3)"
            : "a value of the option's type (see --help)";
    }
}
