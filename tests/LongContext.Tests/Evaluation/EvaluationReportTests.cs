using LongContext.Llama.Evaluation;
using LongContext.Tests.Support;

namespace LongContext.Tests.Evaluation;

/// <summary>One call runs perplexity and passkey on a model and writes the table, the CSV files and the PNG.</summary>
[Trait(Category.Name, Category.Model)]
[Collection(GlobalRngCollection.Name)]
public sealed class EvaluationReportTests : IDisposable
{
    private readonly string folder = Path.Combine(Path.GetTempPath(), "lc-eval-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public void Run_WritesTableCsvAndPng_AndRestoresTrainingMode()
    {
        using var model = EvaluationModels.Uniform();
        model.train();
        using var tokens = TokenSequence.FromArray(EvaluationModels.RandomTokens(700, 7));
        var options = new EvaluationOptions
        {
            Perplexity = new PerplexityOptions { Lengths = [64, 128], Stride = 64 },
            Passkey = new PasskeyOptions { Lengths = [300], Trials = 2, LengthMode = PasskeyLengthMode.TokenBudget },
        };
        EvaluationReport report = LlamaEvaluation.Run(model, options, tokens, new CharTokenizer(), outputFolder: folder);

        Assert.True(model.training);
        Assert.Equal(4, report.Perplexity.Count);                           // 2 protocols x 2 lengths
        Assert.All(report.Perplexity, r => Assert.True(Math.Abs(r.Perplexity - 128) < 1e-3));
        Assert.Single(report.Passkey);
        Assert.Equal(2, report.Passkey[0].Trials.Count);
        Assert.Equal(
            new[] { EvaluationReport.TableFile, EvaluationReport.PerplexityCsvFile, EvaluationReport.PasskeyCsvFile, EvaluationReport.PlotFile }.Order(),
            Directory.GetFiles(folder).Select(Path.GetFileName).Order());
        string[] csv = File.ReadAllLines(Path.Combine(folder, EvaluationReport.PerplexityCsvFile));
        Assert.Equal("protocol,context_length,windows,scored_tokens,mean_loss,perplexity", csv[0]);
        Assert.Equal(5, csv.Length);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(folder, EvaluationReport.PasskeyCsvFile)).Length);
        string table = File.ReadAllText(Path.Combine(folder, EvaluationReport.TableFile));
        Assert.Contains("| longlora | 128.000 | 128.000 |", table);
        byte[] png = File.ReadAllBytes(Path.Combine(folder, EvaluationReport.PlotFile));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
    }

    [Fact]
    public void Run_APasskeyLengthThePromptRefuses_FailsBeforeThePerplexityRun()
    {
        // Before: the whole perplexity run came first, then the passkey length failed and no report was written.
        using var model = EvaluationModels.Uniform();
        using var tokens = TokenSequence.FromArray(EvaluationModels.RandomTokens(700, 7));
        var options = new EvaluationOptions
        {
            Perplexity = new PerplexityOptions { Lengths = [64], Stride = 64 },
            Passkey = new PasskeyOptions { Lengths = [100], Trials = 1 },                 // LongLoRA's ratio: 0 filler characters
        };
        var lines = new List<string>();
        var e = Assert.Throws<ArgumentException>(() => LlamaEvaluation.Run(model, options, tokens, new CharTokenizer(), progress: new Lines(lines)));
        Assert.Contains("target length 100", e.Message, StringComparison.Ordinal);
        Assert.Empty(lines);
    }

    [Theory]
    [InlineData("file")]
    [InlineData("")]
    [InlineData("  ")]
    public void Run_AnOutputFolderThatCannotBeOne_FailsBeforeTheEvaluations(string kind)
    {
        // Before: the evaluations ran to the end, then writing the report failed and the results were lost.
        using var model = EvaluationModels.Uniform();
        using var tokens = TokenSequence.FromArray(EvaluationModels.RandomTokens(700, 7));
        Directory.CreateDirectory(folder);
        string output = kind == "file" ? Path.Combine(folder, "taken") : kind;
        if (kind == "file") File.WriteAllText(output, "a file, not a folder");
        var options = new EvaluationOptions { Perplexity = new PerplexityOptions { Lengths = [64], Stride = 64 }, Passkey = null };
        var lines = new List<string>();
        var e = Assert.ThrowsAny<Exception>(() => LlamaEvaluation.Run(model, options, tokens, outputFolder: output, progress: new Lines(lines)));
        Assert.True(e is IOException or ArgumentException, e.ToString());
        if (kind == "file") Assert.Contains(output, e.Message, StringComparison.Ordinal);
        else Assert.Equal("outputFolder", ((ArgumentException)e).ParamName);
        Assert.Empty(lines);
    }

    [Fact]
    public void Write_AWhitespaceFolder_IsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new EvaluationReport([], []).Write("   "));
        Assert.Equal("folder", e.ParamName);
        Assert.False(Directory.Exists("   "));
    }

    [Fact]
    public void Write_RemovesTheReportFilesOfAPreviousReportThatThisOneLacks_AndNothingElse()
    {
        // Before: a previous report's passkey.csv (and, for an empty report, its perplexity.csv and plot) stayed
        // beside the new table, a stale result next to the new ones.
        var perplexity = new PerplexityResult(PerplexityProtocol.LongLora, 64, 3, 192, 1.5);
        var passkey = new PasskeyResult(300, [new PasskeyTrial(0, 31416, 290, 10, 200, [3, 1], [3, 1])]);
        new EvaluationReport([perplexity], [passkey]).Write(folder);
        string[] mine = ["notes.txt", "passkey.csv.bak"];
        foreach (string name in mine) File.WriteAllText(Path.Combine(folder, name), "a user's file");
        Directory.CreateDirectory(Path.Combine(folder, "runs"));

        IReadOnlyList<string> written = new EvaluationReport([perplexity], []).Write(folder);
        string[] perplexityOnly = ["evaluation.md", "perplexity.csv", "evaluation.png"];
        Assert.Equal(perplexityOnly.Select(n => Path.Combine(folder, n)), written);
        Assert.Equal(perplexityOnly.Concat(mine).Order(StringComparer.Ordinal), Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.DoesNotContain("| passkey |", File.ReadAllText(Path.Combine(folder, "evaluation.md")), StringComparison.Ordinal);

        written = new EvaluationReport([], []).Write(folder);
        Assert.Equal([Path.Combine(folder, "evaluation.md")], written);
        Assert.Equal(mine.Append("evaluation.md").Order(StringComparer.Ordinal), Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.True(Directory.Exists(Path.Combine(folder, "runs")));
        Assert.All(mine, name => Assert.Equal("a user's file", File.ReadAllText(Path.Combine(folder, name))));
    }

    private sealed class Lines(List<string> lines) : IProgress<string>
    {
        public void Report(string value) => lines.Add(value);
    }

    [Fact]
    public void PasskeyCsv_HoldsEveryTrialWithTheAnswerAndWhatWasGenerated()
    {
        var report = new EvaluationReport([], [
            new PasskeyResult(256, [
                new PasskeyTrial(0, 31416, 250, 40, 90, [3, 1, 4, 1, 6], [3, 1, 4, 1, 6]),
                new PasskeyTrial(1, 27182, 254, 12, 95, [2, 7, 1, 8, 2], [2, 7, 9, 9, 9]),
            ]),
        ]);
        Assert.Equal(
            [
                "target_length,seed,key,prompt_tokens,depth_chars,garbage_chars,correct,expected_ids,generated_ids",
                "256,0,31416,250,40,90,1,3 1 4 1 6,3 1 4 1 6",
                "256,1,27182,254,12,95,0,2 7 1 8 2,2 7 9 9 9",
            ],
            report.PasskeyCsv().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
