using LongContext.Llama.Evaluation;
using LongContext.Tests.Support;

namespace LongContext.Tests.Evaluation;

/// <summary>Several reports side by side: table, CSV (one row per model and length) and a PNG, from hand-made results.</summary>
[Trait(Category.Name, Category.Model)]
public sealed class EvaluationComparisonTests : IDisposable
{
    private readonly string folder = Path.Combine(Path.GetTempPath(), "lc-compare-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private static EvaluationReport Report(double lossAt128, double lossAt512, bool correct)
    {
        PasskeyTrial Trial(long seed) => new(seed, 42, 100, 10, 20, [7, 8], correct ? [7, 8] : [7, 9]);
        return new EvaluationReport(
            [new PerplexityResult(PerplexityProtocol.LongLora, 128, 3, 384, lossAt128), new PerplexityResult(PerplexityProtocol.LongLora, 512, 2, 1024, lossAt512),
             new PerplexityResult(PerplexityProtocol.Strided, 128, 5, 640, 9.0)],
            [new PasskeyResult(128, [Trial(0), Trial(1)]), new PasskeyResult(512, [Trial(0)])]);
    }

    [Fact]
    public void TableCsvAndPlot_ShowEveryModelAtEveryLength_UnderTheChosenProtocol()
    {
        var comparison = new EvaluationComparison([new NamedReport("base", Report(Math.Log(30), Math.Log(90), false)), new NamedReport("a, b", Report(Math.Log(20), Math.Log(25), true))]);

        Assert.Equal([128, 512], comparison.Lengths);
        string table = comparison.ToMarkdown();
        Assert.Contains("| model | ppl@128 | ppl@512 | passkey@128 | passkey@512 |", table);
        Assert.Contains("| base | 30.00 | 90.00 | 0/2 | 0/1 |", table);               // exp(ln 30) = 30: the strided row is not shown
        Assert.Contains("| a, b | 20.00 | 25.00 | 2/2 | 1/1 |", table);

        string[] csv = comparison.ToCsv().TrimEnd('\n').Split('\n');
        Assert.Equal("model,context_length,perplexity,mean_loss,scored_tokens,passkey_correct,passkey_trials", csv[0]);
        Assert.Equal(5, csv.Length);
        Assert.StartsWith("\"a, b\",512,", csv[4]);
        Assert.Equal(25.0, double.Parse(csv[4].Split(',')[3], System.Globalization.CultureInfo.InvariantCulture), 1e-9);
        Assert.EndsWith(",1024,1,1", csv[4]);

        string png = Path.Combine(folder, "c.png");
        Directory.CreateDirectory(folder);
        comparison.WritePlot(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(png)[..4]);
        Assert.Single(Directory.GetFiles(folder));                                   // staged file renamed, none left behind
    }

    [Fact]
    public void Csv_QuotesANameWithALineBreak_AndANullRowIsAnError()
    {
        // Before: "two\nlines" was written bare, splitting the CSV row in two; a null row was a NullReferenceException.
        var r = Report(1, 2, true);
        string csv = new EvaluationComparison([new NamedReport("two\nlines", r)]).ToCsv();
        Assert.Contains("\n\"two\nlines\",128,", csv, StringComparison.Ordinal);
        var e = Assert.Throws<ArgumentException>(() => new EvaluationComparison([new NamedReport("a", r), null!]));
        Assert.Contains("row 1", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new EvaluationComparison([new NamedReport("a", null!)]));
    }

    [Fact]
    public void RepeatedOrEmptyNames_AreAnError()
    {
        var r = Report(1, 2, true);
        Assert.Contains("'x' appears 2 times", Assert.Throws<ArgumentException>(() => new EvaluationComparison([new NamedReport("x", r), new NamedReport("x", r)])).Message);
        Assert.Throws<ArgumentException>(() => new EvaluationComparison([new NamedReport(" ", r)]));
        Assert.Throws<ArgumentException>(() => new EvaluationComparison([]));
    }
}
