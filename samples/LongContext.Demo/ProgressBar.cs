using System.Diagnostics;

namespace LongContext.Demo;

/// <summary>
/// A single-line progress bar on the console (redrawn in place); when the output is redirected (CI logs) it
/// prints a plain line every tenth of the work instead.
/// </summary>
public sealed class ProgressBar
{
    private const int Width = 30;
    private readonly string _label;
    private readonly int _total;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _redirected = Console.IsOutputRedirected;
    private int _lastDecile = -1;
    private long _lastDrawMs = -1000;

    /// <summary>Starts a bar.</summary>
    /// <param name="label">What is running (fixed width is not required).</param>
    /// <param name="total">Units of work (steps).</param>
    public ProgressBar(string label, int total)
    {
        _label = label;
        _total = Math.Max(1, total);
    }

    /// <summary>Reports that <paramref name="done"/> units are finished.</summary>
    /// <param name="done">Units finished so far.</param>
    /// <param name="status">Short status text (loss, accuracy).</param>
    public void Report(int done, string status)
    {
        double frac = Math.Clamp((double)done / _total, 0, 1);
        if (_redirected)
        {
            int decile = (int)(frac * 10);
            if (decile == _lastDecile) return;
            _lastDecile = decile;
            Console.WriteLine($"{_label}: {done}/{_total} {status} ({_clock.Elapsed.TotalSeconds:F0}s)");
            return;
        }
        long now = _clock.ElapsedMilliseconds;
        if (done < _total && now - _lastDrawMs < 100) return;
        _lastDrawMs = now;
        int filled = (int)(frac * Width);
        string eta = done > 0 && done < _total ? $" eta {TimeSpan.FromSeconds(_clock.Elapsed.TotalSeconds * (_total - done) / done):m\\:ss}" : "";
        string line = $"\r{_label} [{new string('#', filled)}{new string('.', Width - filled)}] {done}/{_total} {status}{eta}";
        Console.Write(line.PadRight(100));
    }

    /// <summary>Ends the bar's line.</summary>
    /// <param name="status">Final status text.</param>
    public void Complete(string status)
    {
        if (_redirected) Console.WriteLine($"{_label}: done {status} ({_clock.Elapsed.TotalSeconds:F0}s)");
        else
        {
            _lastDrawMs = -1000;
            Report(_total, status);
            Console.WriteLine($" ({_clock.Elapsed.TotalSeconds:F0}s)");
        }
    }
}
