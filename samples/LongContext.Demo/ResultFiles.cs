using System.Globalization;
using System.Text;
using ScottPlot;

namespace LongContext.Demo;

/// <summary>Accuracy and loss of one model at one context length.</summary>
/// <param name="Model">Which model (row of the table).</param>
/// <param name="ContextLength">Evaluation sequence length.</param>
/// <param name="Score">Its loss and accuracy.</param>
public sealed record LengthResult(string Model, int ContextLength, Score Score);

/// <summary>Writes the demo's results: CSV files, a PNG plot and the console table.</summary>
public static class ResultFiles
{
    /// <summary>Writes <c>accuracy_by_length.csv</c> (model, context_length, accuracy, loss).</summary>
    /// <param name="path">File path.</param>
    /// <param name="results">Rows.</param>
    public static void WriteLengths(string path, IEnumerable<LengthResult> results)
    {
        var sb = new StringBuilder("model,context_length,accuracy,loss\n");
        foreach (var r in results)
            sb.Append(CultureInfo.InvariantCulture, $"{Quote(r.Model)},{r.ContextLength},{r.Score.Accuracy:F4},{r.Score.Loss:F4}\n");
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>Writes <c>training_curves.csv</c> (run, step, loss, accuracy).</summary>
    /// <param name="path">File path.</param>
    /// <param name="curve">Points of all runs.</param>
    public static void WriteCurves(string path, IEnumerable<CurvePoint> curve)
    {
        var sb = new StringBuilder("run,step,loss,accuracy\n");
        foreach (var p in curve)
            sb.Append(CultureInfo.InvariantCulture, $"{Quote(p.Run)},{p.Step},{p.Loss:F4},{p.Accuracy:F4}\n");
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>Saves a two-panel PNG: accuracy vs context length per model, training loss vs step per run.</summary>
    /// <param name="path">File path (.png).</param>
    /// <param name="results">Accuracy by length.</param>
    /// <param name="curve">Training curves.</param>
    /// <param name="shortContext">The short context, marked on the first panel.</param>
    public static void WritePlot(string path, IReadOnlyList<LengthResult> results, IReadOnlyList<CurvePoint> curve, int shortContext)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        Plot acc = multiplot.GetPlot(0), loss = multiplot.GetPlot(1);

        foreach (var group in results.GroupBy(r => r.Model))
        {
            var rows = group.OrderBy(r => r.ContextLength).ToArray();
            var line = acc.Add.Scatter(rows.Select(r => (double)r.ContextLength).ToArray(), rows.Select(r => 100 * r.Score.Accuracy).ToArray());
            line.LegendText = group.Key;
            line.LineWidth = 2;
            line.MarkerSize = 7;
        }
        acc.Add.VerticalLine(shortContext, 1, Colors.Gray, LinePattern.Dashed);
        acc.Title("Retrieval accuracy vs context length");
        acc.XLabel("context length (tokens)");
        acc.YLabel("accuracy (%)");
        acc.Axes.SetLimitsY(0, 105);
        acc.ShowLegend(Alignment.LowerLeft);

        foreach (var group in curve.GroupBy(p => p.Run))
        {
            var pts = group.ToArray();
            var line = loss.Add.Scatter(pts.Select(p => (double)p.Step).ToArray(), pts.Select(p => p.Loss).ToArray());
            line.LegendText = group.Key;
            line.MarkerSize = 0;
            line.LineWidth = 2;
        }
        loss.Title("Training loss (answers)");
        loss.XLabel("step");
        loss.YLabel("cross-entropy");
        loss.ShowLegend(Alignment.UpperRight);

        multiplot.SavePng(path, 1400, 560);
    }

    /// <summary>Formats the accuracy table (rows: models; columns: context lengths).</summary>
    /// <param name="results">Accuracy by length.</param>
    /// <returns>The table as text.</returns>
    public static string Table(IReadOnlyList<LengthResult> results)
    {
        var lengths = results.Select(r => r.ContextLength).Distinct().Order().ToArray();
        var models = results.Select(r => r.Model).Distinct().ToArray();
        int nameWidth = Math.Max(5, models.Max(m => m.Length));
        var sb = new StringBuilder();
        string header = "model".PadRight(nameWidth) + " | " + string.Join(" | ", lengths.Select(l => $"acc@{l}".PadLeft(8))) + $" | {"loss@" + lengths[^1],9}";
        sb.AppendLine(header);
        sb.AppendLine(new string('-', header.Length));
        foreach (string m in models)
        {
            var row = lengths.Select(l => results.FirstOrDefault(r => r.Model == m && r.ContextLength == l)).ToArray();
            sb.Append(m.PadRight(nameWidth)).Append(" | ");
            sb.Append(string.Join(" | ", row.Select(r => (r is null ? "-" : (100 * r.Score.Accuracy).ToString("F1", CultureInfo.InvariantCulture) + "%").PadLeft(8))));
            sb.Append(" | ").Append((row[^1] is { } last ? last.Score.Loss.ToString("F3", CultureInfo.InvariantCulture) : "-").PadLeft(9));
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static string Quote(string s) => s.Contains(',') || s.Contains('"') ? $"\"{s.Replace("\"", "\"\"")}\"" : s;
}
