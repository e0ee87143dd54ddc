using System.Collections;

namespace LongContext;

/// <summary>
/// An immutable copy of a list that compares by its elements, so that records holding lists (factor lists, warning
/// lists) get value equality from the compiler-generated <c>Equals</c> without hand-written overrides.
/// </summary>
internal sealed class ValueList<T> : IReadOnlyList<T>, IEquatable<ValueList<T>>
{
    private readonly T[] _items;

    private ValueList(T[] items) => _items = items;

    /// <summary>The empty list (one instance per element type).</summary>
    public static ValueList<T> Empty { get; } = new([]);

    /// <summary>A copy of <paramref name="items"/>, or null for null (an existing <see cref="ValueList{T}"/> is reused).</summary>
    public static ValueList<T>? CopyOf(IEnumerable<T>? items) => items switch
    {
        null => null,
        ValueList<T> list => list,
        _ => new ValueList<T>(items.ToArray()),
    };

    /// <inheritdoc />
    public T this[int index] => _items[index];

    /// <inheritdoc />
    public int Count => _items.Length;

    /// <inheritdoc />
    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)_items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _items.GetEnumerator();

    /// <inheritdoc />
    public bool Equals(ValueList<T>? other) => other is not null && _items.SequenceEqual(other._items);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ValueList<T> other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (T item in _items) hash.Add(item);
        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => $"[{string.Join(", ", _items)}]";
}
