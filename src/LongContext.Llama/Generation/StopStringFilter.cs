namespace LongContext.Llama.Generation;

/// <summary>
/// Cuts a stream of text pieces exactly before the first occurrence of any stop string. Text that could still
/// become the start of a stop string is held back until the next piece decides it, so the released pieces never
/// contain any part of a stop string that is completed later.
/// </summary>
public sealed class StopStringFilter
{
    private readonly string[] _stops;
    private string _pending = "";

    /// <summary>Creates the filter.</summary>
    /// <param name="stopStrings">Non-empty strings; none means every piece passes at once.</param>
    public StopStringFilter(IReadOnlyList<string> stopStrings)
    {
        ArgumentNullException.ThrowIfNull(stopStrings);
        if (stopStrings.Any(string.IsNullOrEmpty)) throw new ArgumentException("stop strings must not be empty.", nameof(stopStrings));
        _stops = stopStrings.ToArray();
    }

    /// <summary>True once a stop string was found; later pieces are dropped.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds a piece; returns the text that is now certain (before any stop string).</summary>
    /// <param name="piece">The next text piece.</param>
    public string Push(string piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        if (Stopped) return "";
        _pending += piece;
        int cut = -1;
        foreach (string stop in _stops)
        {
            int at = _pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            string before = _pending[..cut];
            _pending = "";
            return before;
        }
        int hold = 0;   // the longest suffix of pending that is a proper prefix of a stop string
        foreach (string stop in _stops)
            for (int length = Math.Min(stop.Length - 1, _pending.Length); length > hold; length--)
                if (string.CompareOrdinal(_pending, _pending.Length - length, stop, 0, length) == 0)
                {
                    hold = length;
                    break;
                }
        string release = _pending[..^hold];
        _pending = _pending[^hold..];
        return release;
    }

    /// <summary>Releases what is held back (the stream ended without completing a stop string).</summary>
    public string Flush()
    {
        string rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }
}
