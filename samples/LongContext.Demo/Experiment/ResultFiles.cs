using System.Globalization;
using System.Text;
using LongContext.Llama.Evaluation;
using Spectre.Console;

namespace LongContext.Demo.Experiment;

/// <summary>The demo's outputs: console table, <c>results.csv</c>, <c>results.md</c>, <c>context_extension.png</c>.</summary>
public static class ResultFiles
{
    /// <summary>File names inside the output folder.</summary>
    public const string Csv = "results.csv", Markdown = "results.md", Plot = "context_extension.png";

    /// <summary>The library's comparison of the methods' reports.</summary>
    /// <param name="results">Per-method results.</param>
    public static EvaluationComparison Comparison(IReadOnlyList<MethodResult> results)
        => new(results.Select(r => new NamedReport(Methods.Label(r.Method), r.Report)).ToList());

    /// <summary>The console table.</summary>
    /// <param name="results">Per-method results.</param>
    /// <param name="lengths">L, 2L, 4L.</param>
    public static Table ConsoleTable(IReadOnlyList<MethodResult> results, IReadOnlyList<int> lengths)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("method");
        foreach (int l in lengths) table.AddColumn(new TableColumn($"ppl@{l}").RightAligned());
        foreach (int l in lengths) table.AddColumn(new TableColumn($"passkey@{l}").RightAligned());
        table.AddColumn(new TableColumn("trainable").RightAligned());
        table.AddColumn(new TableColumn("train tok/s").RightAligned());
        table.AddColumn(new TableColumn("train s").RightAligned());
        table.AddColumn(new TableColumn("peak RSS MiB").RightAligned());
        foreach (var r in results)
        {
            var cells = new List<string> { Markup.Escape(Methods.Key(r.Method)) };
            cells.AddRange(lengths.Select(l => r.Perplexity(l).ToString("F2", CultureInfo.InvariantCulture)));
            cells.AddRange(lengths.Select(l => $"{100 * r.Passkey(l).Accuracy:F0}%"));
            cells.Add(r.TrainableParameters.ToString("N0", CultureInfo.InvariantCulture));
            cells.Add(r.Training is { } t ? t.TokensPerSecond.ToString("F0", CultureInfo.InvariantCulture) : "-");
            cells.Add(r.Training is { } s ? s.Seconds.ToString("F0", CultureInfo.InvariantCulture) : "-");
            cells.Add((r.PeakRssBytes / 1048576.0).ToString("F0", CultureInfo.InvariantCulture));
            table.AddRow(cells.ToArray());
        }
        table.Caption(Markup.Escape(string.Join("; ", results.Select(r => $"{Methods.Key(r.Method)}: {Methods.Label(r.Method)}"))));
        return table;
    }

    /// <summary>The CSV: one row per method and length.</summary>
    /// <param name="results">Per-method results.</param>
    /// <param name="lengths">L, 2L, 4L.</param>
    public static string ToCsv(IReadOnlyList<MethodResult> results, IReadOnlyList<int> lengths)
    {
        var sb = new StringBuilder("method,label,context_length,perplexity,passkey_correct,passkey_trials,trainable_parameters,total_parameters,train_tokens_per_second,train_seconds,peak_rss_mib\n");
        foreach (var r in results)
            foreach (int l in lengths)
            {
                var k = r.Passkey(l);
                sb.Append(CultureInfo.InvariantCulture,
                    $"{Methods.Key(r.Method)},\"{Methods.Label(r.Method)}\",{l},{r.Perplexity(l):F4},{k.Correct},{k.Trials.Count},{r.TrainableParameters},{r.TotalParameters},{(r.Training is { } t ? t.TokensPerSecond.ToString("F1", CultureInfo.InvariantCulture) : "")},{(r.Training is { } s ? s.Seconds.ToString("F1", CultureInfo.InvariantCulture) : "")},{r.PeakRssBytes / 1048576.0:F1}\n");
            }
        return sb.ToString();
    }

    /// <summary>The Markdown summary: settings, the table, the expectations.</summary>
    /// <param name="results">Per-method results.</param>
    /// <param name="lengths">L, 2L, 4L.</param>
    /// <param name="expectations">The judged pattern.</param>
    /// <param name="header">Settings lines.</param>
    public static string ToMarkdown(IReadOnlyList<MethodResult> results, IReadOnlyList<int> lengths, IReadOnlyList<Expectation> expectations, string header)
    {
        var sb = new StringBuilder(header).AppendLine();
        sb.AppendLine("| method | " + string.Join(" | ", lengths.Select(l => $"ppl@{l}").Concat(lengths.Select(l => $"passkey@{l}"))) + " | trainable | train tok/s | peak RSS MiB |");
        sb.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---:|", 2 * lengths.Count + 3)));
        foreach (var r in results)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {Methods.Label(r.Method)} | {string.Join(" | ", lengths.Select(l => r.Perplexity(l).ToString("F2", CultureInfo.InvariantCulture)))} | {string.Join(" | ", lengths.Select(l => $"{r.Passkey(l).Correct}/{r.Passkey(l).Trials.Count}"))} | {r.TrainableParameters:N0} | {(r.Training is { } t ? t.TokensPerSecond.ToString("F0", CultureInfo.InvariantCulture) : "-")} | {r.PeakRssBytes / 1048576.0:F0} |"));
        sb.AppendLine().AppendLine("Expected pattern (at 4L, perplexity):").AppendLine();
        foreach (var e in expectations) sb.AppendLine($"- {(e.Held ? "held" : "NOT reproduced")}: {e.Claim} — {e.Measured}");
        return sb.ToString();
    }
}
