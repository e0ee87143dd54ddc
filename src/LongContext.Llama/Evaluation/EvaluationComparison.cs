using System.Globalization;
using System.Text;
using LongContext.IO;
using ScottPlot;

namespace LongContext.Llama.Evaluation;

/// <summary>One named row of an <see cref="EvaluationComparison"/>: a model (or method) and its report.</summary>
/// <param name="Name">Row name (e.g. the extension method).</param>
/// <param name="Report">Its evaluation.</param>
public sealed record NamedReport(string Name, EvaluationReport Report);

/// <summary>
/// Several models' <see cref="EvaluationReport"/>s side by side: a Markdown table (rows: models; columns:
/// perplexity, then passkey accuracy, by length), a CSV with one row per model and length, and a PNG with
/// perplexity and passkey accuracy against the length, one line per model. Perplexity is read from one protocol.
/// </summary>
public sealed class EvaluationComparison
{
    /// <summary>Compares reports.</summary>
    /// <param name="rows">Named reports, at least one, names distinct and non-empty.</param>
    /// <param name="protocol">The perplexity protocol shown.</param>
    /// <exception cref="ArgumentException">No rows, a null row or report, an empty or repeated name.</exception>
    public EvaluationComparison(IReadOnlyList<NamedReport> rows, PerplexityProtocol protocol = PerplexityProtocol.LongLora)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("the comparison needs at least one report.", nameof(rows));
        for (int i = 0; i < rows.Count; i++)
            if (rows[i]?.Report is null) throw new ArgumentException($"row {i} (or its report) is null.", nameof(rows));
        if (rows.FirstOrDefault(r => string.IsNullOrWhiteSpace(r.Name)) is { } empty)
            throw new ArgumentException("every row needs a name; got an empty one.", nameof(rows));
        if (rows.GroupBy(r => r.Name).FirstOrDefault(g => g.Count() > 1) is { } repeated)
            throw new ArgumentException($"row names must be distinct; '{repeated.Key}' appears {repeated.Count()} times.", nameof(rows));
        Rows = rows.ToList();
        Protocol = protocol;
    }

    /// <summary>The rows, in order.</summary>
    public IReadOnlyList<NamedReport> Rows { get; }

    /// <summary>The perplexity protocol shown.</summary>
    public PerplexityProtocol Protocol { get; }

    /// <summary>Every length any row measured (perplexity under <see cref="Protocol"/>, or passkey), ascending.</summary>
    public IReadOnlyList<int> Lengths => Rows
        .SelectMany(r => r.Report.Perplexity.Where(p => p.Protocol == Protocol).Select(p => p.Length).Concat(r.Report.Passkey.Select(p => p.TargetLength)))
        .Distinct().Order().ToList();

    private PerplexityResult? Perplexity(NamedReport row, int length)
        => row.Report.Perplexity.FirstOrDefault(p => p.Protocol == Protocol && p.Length == length);

    private static PasskeyResult? Passkey(NamedReport row, int length) => row.Report.Passkey.FirstOrDefault(p => p.TargetLength == length);

    /// <summary>The table: <c>| model | ppl@L1 | ... | passkey@L1 | ... |</c>, perplexity to 2 decimals, passkey as correct/trials; "-" where not measured.</summary>
    public string ToMarkdown()
    {
        IReadOnlyList<int> lengths = Lengths;
        var sb = new StringBuilder();
        sb.AppendLine("| model | " + string.Join(" | ", lengths.Select(l => $"ppl@{l}").Concat(lengths.Select(l => $"passkey@{l}"))) + " |");
        sb.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---:|", 2 * lengths.Count)));
        foreach (var row in Rows)
        {
            var cells = lengths.Select(l => Perplexity(row, l) is { } p ? p.Perplexity.ToString("F2", CultureInfo.InvariantCulture) : "-")
                .Concat(lengths.Select(l => Passkey(row, l) is { } k ? $"{k.Correct}/{k.Trials.Count}" : "-"));
            sb.AppendLine($"| {row.Name} | " + string.Join(" | ", cells) + " |");
        }
        return sb.ToString();
    }

    /// <summary>CSV: <c>model,context_length,perplexity,mean_loss,scored_tokens,passkey_correct,passkey_trials</c>; empty cells where not measured.</summary>
    public string ToCsv()
    {
        var sb = new StringBuilder("model,context_length,perplexity,mean_loss,scored_tokens,passkey_correct,passkey_trials\n");
        foreach (var row in Rows)
            foreach (int l in Lengths)
            {
                var p = Perplexity(row, l);
                var k = Passkey(row, l);
                if (p is null && k is null) continue;
                sb.Append(CultureInfo.InvariantCulture,
                    $"{Quote(row.Name)},{l},{(p is null ? "" : p.Perplexity.ToString("R", CultureInfo.InvariantCulture))},{(p is null ? "" : p.MeanLoss.ToString("R", CultureInfo.InvariantCulture))},{p?.ScoredTokens},{k?.Correct},{k?.Trials.Count}\n");
            }
        return sb.ToString();
    }

    /// <summary>
    /// A PNG: perplexity against length (log scale when the values span more than 10x) and passkey accuracy against
    /// the target length, one line per row in the same colour in both panels, side by side; the legend sits below
    /// the first panel.
    /// </summary>
    /// <param name="path">Destination .png (staged, then renamed).</param>
    /// <param name="title">Optional title over the perplexity panel.</param>
    /// <exception cref="InvalidOperationException">No row holds perplexity or passkey results.</exception>
    public void WritePlot(string path, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        bool anyPerplexity = Rows.Any(r => r.Report.Perplexity.Any(p => p.Protocol == Protocol));
        bool anyPasskey = Rows.Any(r => r.Report.Passkey.Count > 0);
        if (!anyPerplexity && !anyPasskey) throw new InvalidOperationException("the comparison holds no results to plot.");
        var multiplot = new Multiplot();
        int panels = (anyPerplexity ? 1 : 0) + (anyPasskey ? 1 : 0);
        multiplot.AddPlots(panels);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var palette = new ScottPlot.Palettes.Category10();
        int next = 0;
        if (anyPerplexity)
        {
            Plot plot = multiplot.GetPlot(next++);
            var all = Rows.SelectMany(r => r.Report.Perplexity.Where(p => p.Protocol == Protocol)).Select(p => p.Perplexity).ToList();
            bool log = all.Max() / all.Min() > 10;
            for (int i = 0; i < Rows.Count; i++)
            {
                var points = Rows[i].Report.Perplexity.Where(p => p.Protocol == Protocol).OrderBy(p => p.Length).ToArray();
                if (points.Length == 0) continue;
                var line = plot.Add.Scatter(points.Select(p => (double)p.Length).ToArray(),
                    points.Select(p => log ? Math.Log10(p.Perplexity) : p.Perplexity).ToArray(), palette.GetColor(i));
                line.LegendText = Rows[i].Name;
                line.LineWidth = 2;
                line.MarkerSize = 7;
            }
            plot.Title(title ?? "Perplexity vs context length");
            plot.XLabel("context length (tokens)");
            plot.YLabel(log ? "perplexity (log10)" : "perplexity");
            if (anyPasskey) plot.HideLegend();                             // one legend, beside the last panel
            else SideLegend(plot);
        }
        if (anyPasskey)
        {
            Plot plot = multiplot.GetPlot(next);
            for (int i = 0; i < Rows.Count; i++)
            {
                var points = Rows[i].Report.Passkey.OrderBy(p => p.TargetLength).ToArray();
                if (points.Length == 0) continue;
                var line = plot.Add.Scatter(points.Select(p => (double)p.TargetLength).ToArray(), points.Select(p => 100 * p.Accuracy).ToArray(), palette.GetColor(i));
                line.LegendText = Rows[i].Name;
                line.LineWidth = 2;
                line.MarkerSize = 7;
            }
            plot.Title("Passkey retrieval vs context length");
            plot.XLabel("prompt length (tokens)");
            plot.YLabel("accuracy (%)");
            plot.Axes.SetLimitsY(-5, 105);
            SideLegend(plot);                                               // the last panel's legend names both panels' colours
        }
        AtomicFile.WriteThroughPath(path, temp => multiplot.SavePng(temp, 900 * panels, 560));
    }

    // Beside the data, so no line is hidden and every method's entry fits the panel's height (below it, seven entries
    // were cut off at the image's edge).
    private static void SideLegend(Plot plot) => plot.ShowLegend(Edge.Right);

    // RFC 4180: a field holding a comma, a quote or a line break is quoted.
    private static string Quote(string s) => s.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? $"\"{s.Replace("\"", "\"\"")}\"" : s;
}
