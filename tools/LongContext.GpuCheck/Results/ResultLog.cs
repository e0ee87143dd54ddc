using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LongContext.GpuCheck.Results;

/// <summary>
/// Collects check rows: one JSON object a line in the results file (read by scripts/gpu/report.py) and one readable
/// line each on the console. Appends, so several commands of one run share a file.
/// </summary>
internal sealed class ResultLog : IDisposable
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,   // a file for report.py, not for HTML: keep '->' readable
    };

    private readonly StreamWriter? _file;
    private readonly TextWriter _console;
    private readonly List<CheckResult> _rows = [];

    /// <summary>Opens the log.</summary>
    /// <param name="path">JSON-lines file to append to, or null for the console only.</param>
    /// <param name="console">Where readable lines go.</param>
    public ResultLog(string? path, TextWriter console)
    {
        _console = console;
        if (path is not null)
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (dir is not null) Directory.CreateDirectory(dir);
            _file = new StreamWriter(path, append: true) { AutoFlush = true };
        }
    }

    /// <summary>Rows recorded so far.</summary>
    public IReadOnlyList<CheckResult> Rows => _rows;

    /// <summary>Rows that failed or threw.</summary>
    public int Failures => _rows.Count(r => r.Status is CheckStatus.Fail or CheckStatus.Error);

    /// <summary>Records a row.</summary>
    public void Add(CheckResult row)
    {
        _rows.Add(row);
        _file?.WriteLine(JsonSerializer.Serialize(row, Json));
        string measured = row.Value is double v ? $" {row.Metric}={v:E2}" + (row.Tolerance is double t ? $" tol={t:E2}" : "") : "";
        string detail = row.Detail.Length == 0 ? "" : $"  ({row.Detail})";
        _console.WriteLine($"{Label(row.Status)} {row.Group,-10} {row.Dtype,-8} {row.Name}{measured}{detail}");
    }

    /// <summary>The summary line: counts by status.</summary>
    public string Summary()
        => $"{_rows.Count(r => r.Status == CheckStatus.Pass)} passed, {_rows.Count(r => r.Status == CheckStatus.Fail)} failed, " +
           $"{_rows.Count(r => r.Status == CheckStatus.Error)} errors, {_rows.Count(r => r.Status == CheckStatus.Skip)} skipped";

    private static string Label(CheckStatus s) => s switch
    {
        CheckStatus.Pass => "ok  ",
        CheckStatus.Fail => "FAIL",
        CheckStatus.Skip => "skip",
        _ => "ERR ",
    };

    /// <inheritdoc />
    public void Dispose() => _file?.Dispose();
}
