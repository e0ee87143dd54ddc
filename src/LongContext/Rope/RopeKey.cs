using System.Globalization;

namespace LongContext.Rope;

/// <summary>The JSON kind of a rope key's value.</summary>
internal enum RopeValueKind
{
    /// <summary>A number (<see cref="double"/>).</summary>
    Number,
    /// <summary>A whole number (<see cref="int"/>).</summary>
    Integer,
    /// <summary>true or false.</summary>
    Boolean,
    /// <summary>A list of numbers.</summary>
    NumberList,
}

/// <summary>What HF computes when a config gives a rope key the value null.</summary>
internal enum RopeNull
{
    /// <summary>HF fails on it (the value is used as a number): refused.</summary>
    Refused,
    /// <summary>HF reads it with <c>dict.get</c> and treats None as unset (a default or a derived value applies).</summary>
    Unset,
    /// <summary>HF tests the value's truthiness: null reads as false.</summary>
    ReadsAsFalse,
}

/// <summary>
/// One field of <see cref="RopeParameters"/> described once: its property, its HF <c>rope_parameters</c> name, its
/// value kind, its unset state, its check, and what HF makes of a null or falsy value. Reading, writing and validation
/// (<see cref="RopeKeys"/>) are derived from these descriptions.
/// </summary>
internal abstract class RopeKey
{
    private protected RopeKey(string property, string hfName, RopeValueKind kind, bool falsyIsUnset, RopeNull onNull)
    {
        Property = property;
        HfName = hfName;
        Kind = kind;
        FalsyIsUnset = falsyIsUnset;
        OnNull = onNull;
    }

    /// <summary>The <see cref="RopeParameters"/> property (<c>BetaFast</c>).</summary>
    public string Property { get; }

    /// <summary>The HF key (<c>beta_fast</c>).</summary>
    public string HfName { get; }

    /// <summary>The JSON kind of the value.</summary>
    public RopeValueKind Kind { get; }

    /// <summary>HF reads the key with <c>value or default</c> (or a truthiness test), so 0 means unset.</summary>
    public bool FalsyIsUnset { get; }

    /// <summary>What an explicit JSON null means to HF.</summary>
    public RopeNull OnNull { get; }

    /// <summary>Whether <paramref name="p"/> holds a value other than the unset state.</summary>
    public abstract bool IsSet(RopeParameters p);

    /// <summary>The value in <paramref name="p"/> (boxed; null when unset and nullable).</summary>
    public abstract object? Value(RopeParameters p);

    /// <summary><paramref name="p"/> with this field set to <paramref name="value"/> (checked by the property's init accessor).</summary>
    public abstract RopeParameters With(RopeParameters p, object? value);

    /// <summary>A value as messages show it.</summary>
    public static string Show(object? value) => value switch
    {
        null => "null",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IEnumerable<double> l => $"[{string.Join(", ", l.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}]",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null",
    };
}

/// <summary>A <see cref="RopeKey"/> whose value has type <typeparamref name="T"/>.</summary>
internal sealed class RopeKey<T> : RopeKey
{
    private readonly Func<RopeParameters, T> _get;
    private readonly Func<RopeParameters, T, RopeParameters> _with;
    private readonly Func<T, string?> _problem;
    private readonly T _unset;

    /// <param name="property">The property name.</param>
    /// <param name="hfName">The HF key.</param>
    /// <param name="get">Reads the property.</param>
    /// <param name="with">Copies a record with the property set.</param>
    /// <param name="unset">The property's value when not set (null, or the default of a non-nullable field).</param>
    /// <param name="problem">What is wrong with a value ("must be positive"), or null when it is valid.</param>
    /// <param name="falsyIsUnset">See <see cref="RopeKey.FalsyIsUnset"/>.</param>
    /// <param name="onNull">See <see cref="RopeKey.OnNull"/>.</param>
    public RopeKey(string property, string hfName, Func<RopeParameters, T> get, Func<RopeParameters, T, RopeParameters> with,
        T unset, Func<T, string?> problem, bool falsyIsUnset = false, RopeNull onNull = RopeNull.Refused)
        : base(property, hfName, KindOf(), falsyIsUnset, onNull)
    {
        _get = get;
        _with = with;
        _unset = unset;
        _problem = problem;
    }

    /// <summary>Returns <paramref name="value"/> if valid; else throws an <see cref="ArgumentOutOfRangeException"/> naming the property, the value and what is expected.</summary>
    public T Checked(T value)
    {
        if (value is not null && _problem(value) is string problem)
            throw new ArgumentOutOfRangeException(Property, value, $"{Property} {problem}; got {Show(value)}.");
        return value;
    }

    /// <inheritdoc />
    public override bool IsSet(RopeParameters p) => !EqualityComparer<T>.Default.Equals(_get(p), _unset);

    /// <inheritdoc />
    public override object? Value(RopeParameters p) => _get(p);

    /// <inheritdoc />
    public override RopeParameters With(RopeParameters p, object? value) => _with(p, (T)value!);

    private static RopeValueKind KindOf()
    {
        Type t = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        if (t == typeof(double)) return RopeValueKind.Number;
        if (t == typeof(int)) return RopeValueKind.Integer;
        if (t == typeof(bool)) return RopeValueKind.Boolean;
        if (t == typeof(IReadOnlyList<double>)) return RopeValueKind.NumberList;
        throw new NotSupportedException($"No JSON kind for {t}.");
    }
}
