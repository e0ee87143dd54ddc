using System.Globalization;
using System.Text;
using LongContext.IO;
using ScottPlot;

namespace LongContext.Llama.Evaluation;

/// <summary>Perplexity and passkey results by length, and the files they are written to (table, CSV, PNG).</summary>
/// <param name="Perplexity">Perplexity by protocol and length (empty when not run).</param>
/// <param name="Passkey">Passkey accuracy by length (empty when not run).</param>
public sealed record EvaluationReport(IReadOnlyList<PerplexityResult> Perplexity, IReadOnlyList<PasskeyResult> Passkey)
{
    /// <summary>File names <see cref="Write"/> uses inside its folder.</summary>
    public const string TableFile = "evaluation.md", PerplexityCsvFile = "perplexity.csv", PasskeyCsvFile = "passkey.csv", PlotFile = "evaluation.png";

    /// <summary>
    /// Every file name a report's <see cref="Write"/> owns in its folder (<see cref="TableFile"/>,
    /// <see cref="PerplexityCsvFile"/>, <see cref="PasskeyCsvFile"/>, <see cref="PlotFile"/>): those it writes, and
    /// those it removes when this report lacks their measure.
    /// </summary>
    public static IReadOnlyList<string> FileNames { get; } = [TableFile, PerplexityCsvFile, PasskeyCsvFile, PlotFile];

    /// <summary>
    /// The names of the files <see cref="Write"/> writes for this report, in that order: <see cref="TableFile"/>
    /// always, <see cref="PerplexityCsvFile"/> and <see cref="PasskeyCsvFile"/> for the measures present, and
    /// <see cref="PlotFile"/> when either is.
    /// </summary>
    public IReadOnlyList<string> FilesToWrite()
    {
        var names = new List<string> { TableFile };
        if (Perplexity.Count > 0) names.Add(PerplexityCsvFile);
        if (Passkey.Count > 0) names.Add(PasskeyCsvFile);
        if (Perplexity.Count + Passkey.Count > 0) names.Add(PlotFile);
        return names;
    }

    /// <summary>A Markdown table per measure: perplexity (rows: protocols, columns: lengths) and passkey accuracy by length.</summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        if (Perplexity.Count > 0)
        {
            int[] lengths = Perplexity.Select(r => r.Length).Distinct().Order().ToArray();
            sb.AppendLine("| perplexity | " + string.Join(" | ", lengths.Select(l => $"L={l}")) + " |");
            sb.AppendLine("|---|" + string.Concat(lengths.Select(_ => "---|")));
            foreach (var protocol in Perplexity.Select(r => r.Protocol).Distinct())
            {
                var cells = lengths.Select(l => Perplexity.FirstOrDefault(r => r.Protocol == protocol && r.Length == l) is { } r
                    ? r.Perplexity.ToString("F3", CultureInfo.InvariantCulture) : "-");
                sb.AppendLine($"| {ProtocolLabel(protocol)} | " + string.Join(" | ", cells) + " |");
            }
        }
        if (Passkey.Count > 0)
        {
            if (sb.Length > 0) sb.AppendLine();
            sb.AppendLine("| passkey | " + string.Join(" | ", Passkey.Select(r => $"L={r.TargetLength}")) + " |");
            sb.AppendLine("|---|" + string.Concat(Passkey.Select(_ => "---|")));
            sb.AppendLine("| accuracy | " + string.Join(" | ", Passkey.Select(r => $"{r.Correct}/{r.Trials.Count}")) + " |");
            sb.AppendLine("| mean prompt tokens | " + string.Join(" | ", Passkey.Select(r => r.MeanPromptTokens.ToString(CultureInfo.InvariantCulture))) + " |");
        }
        return sb.ToString();
    }

    /// <summary>CSV of the perplexity rows: protocol, context_length, windows, scored_tokens, mean_loss, perplexity.</summary>
    public string PerplexityCsv()
    {
        var sb = new StringBuilder("protocol,context_length,windows,scored_tokens,mean_loss,perplexity\n");
        foreach (var r in Perplexity)
            sb.Append(CultureInfo.InvariantCulture, $"{ProtocolLabel(r.Protocol)},{r.Length},{r.Windows},{r.ScoredTokens},{r.MeanLoss:R},{r.Perplexity:R}\n");
        return sb.ToString();
    }

    /// <summary>
    /// CSV of every passkey trial: target_length, seed, key, prompt_tokens, depth_chars, garbage_chars, correct,
    /// expected_ids and generated_ids (the answer's token ids and what greedy decoding produced, space-separated:
    /// what the model answered when it missed).
    /// </summary>
    public string PasskeyCsv()
    {
        var sb = new StringBuilder("target_length,seed,key,prompt_tokens,depth_chars,garbage_chars,correct,expected_ids,generated_ids\n");
        foreach (var r in Passkey)
            foreach (var t in r.Trials)
                sb.Append(CultureInfo.InvariantCulture,
                    $"{r.TargetLength},{t.Seed},{t.Key},{t.PromptTokens},{t.DepthCharacters},{t.GarbageCharacters},{(t.Correct ? 1 : 0)},{string.Join(' ', t.Expected)},{string.Join(' ', t.Generated)}\n");
        return sb.ToString();
    }

    /// <summary>A PNG with perplexity by length (one line per protocol) and passkey accuracy by length, side by side.</summary>
    /// <param name="path">Destination .png (written to a temporary file, then renamed).</param>
    public void WritePlot(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        int panels = (Perplexity.Count > 0 ? 1 : 0) + (Passkey.Count > 0 ? 1 : 0);
        if (panels == 0) throw new InvalidOperationException("the report holds no results to plot.");
        var multiplot = new Multiplot();
        multiplot.AddPlots(panels);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        int next = 0;
        if (Perplexity.Count > 0)
        {
            Plot plot = multiplot.GetPlot(next++);
            foreach (var group in Perplexity.GroupBy(r => r.Protocol))
            {
                var rows = group.OrderBy(r => r.Length).ToArray();
                var line = plot.Add.Scatter(rows.Select(r => (double)r.Length).ToArray(), rows.Select(r => r.Perplexity).ToArray());
                line.LegendText = ProtocolLabel(group.Key);
                line.LineWidth = 2;
                line.MarkerSize = 7;
            }
            plot.Title("Perplexity vs context length");
            plot.XLabel("context length (tokens)");
            plot.YLabel("perplexity");
            plot.ShowLegend(Alignment.UpperRight);
        }
        if (Passkey.Count > 0)
        {
            Plot plot = multiplot.GetPlot(next);
            var rows = Passkey.OrderBy(r => r.TargetLength).ToArray();
            var line = plot.Add.Scatter(rows.Select(r => (double)r.MeanPromptTokens).ToArray(), rows.Select(r => 100 * r.Accuracy).ToArray());
            line.LegendText = "passkey";
            line.LineWidth = 2;
            line.MarkerSize = 7;
            plot.Title("Passkey retrieval vs prompt length");
            plot.XLabel("mean prompt length (tokens)");
            plot.YLabel("accuracy (%)");
            plot.Axes.SetLimitsY(0, 105);
        }
        AtomicFile.WriteThroughPath(path, temp => multiplot.SavePng(temp, 700 * panels, 520));
    }

    /// <summary>
    /// Writes <see cref="FilesToWrite"/> into <paramref name="folder"/>: <see cref="TableFile"/>, the CSV files of the measures
    /// present, and <see cref="PlotFile"/>. A file of <see cref="FileNames"/> this report does not write (a previous
    /// report's <see cref="PasskeyCsvFile"/> when this one has no passkey results) is removed first, so that no stale
    /// result sits beside the new ones; nothing else in the folder is touched. Each file is written atomically.
    /// </summary>
    /// <param name="folder">Output folder, created when missing.</param>
    /// <returns>The paths written, in the order of <see cref="FilesToWrite"/>.</returns>
    public IReadOnlyList<string> Write(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        AtomicFile.CreateFolder(folder);
        IReadOnlyList<string> names = FilesToWrite();
        foreach (string stale in FileNames.Except(names))
        {
            string path = Path.Combine(folder, stale);
            if (File.Exists(path)) File.Delete(path);   // a file only: a folder of that name is not the report's
        }
        var written = new List<string>();
        foreach (string name in names)
        {
            string path = Path.Combine(folder, name);
            if (name == PlotFile) WritePlot(path);
            else AtomicFile.WriteAllText(path, name == TableFile ? ToMarkdown() : name == PerplexityCsvFile ? PerplexityCsv() : PasskeyCsv());
            written.Add(path);
        }
        return written;
    }

    private static string ProtocolLabel(PerplexityProtocol protocol) => protocol == PerplexityProtocol.LongLora ? "longlora" : "strided";
}
