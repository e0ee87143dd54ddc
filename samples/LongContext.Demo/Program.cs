using System.Diagnostics;
using System.Globalization;
using LongContext.Demo;

// Context extension demo: see DemoOptions.Usage and the README's demo section.
DemoOptions? options;
try
{
    options = DemoOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
if (options is null)
{
    Console.WriteLine(DemoOptions.Usage);
    return 0;
}

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var watch = Stopwatch.StartNew();
Directory.CreateDirectory(options.Output);
Console.WriteLine($"Context extension demo{(options.Quick ? " (quick)" : "")}: L = {options.Context} -> {options.LongContext}, seed {options.Seed}, device {options.Device}, output '{options.Output}'.");
ExperimentResult result;
try
{
    result = new Experiment(options).Run();
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

string lengthsCsv = Path.Combine(options.Output, "accuracy_by_length.csv");
string curvesCsv = Path.Combine(options.Output, "training_curves.csv");
string plot = Path.Combine(options.Output, "context_extension.png");
ResultFiles.WriteLengths(lengthsCsv, result.Lengths);
ResultFiles.WriteCurves(curvesCsv, result.Curves);
ResultFiles.WritePlot(plot, result.Lengths, result.Curves, options.Context);

Console.WriteLine();
Console.WriteLine($"Answer accuracy by context length (chance {1.0 / options.Values:P1}; trained at L = {options.Context}, extended to {options.LongContext}):");
Console.WriteLine(ResultFiles.Table(result.Lengths));
Console.WriteLine($"Wrote {lengthsCsv}, {curvesCsv}, {plot} in {watch.Elapsed.TotalMinutes:F1} min.");

// The claim: extension with PI recovers the long context, beyond the unextended baseline and beyond extrapolation.
double gain = result.WithPi.Accuracy - result.Baseline.Accuracy;
bool improved = gain >= 0.2 && result.WithPi.Accuracy > result.WithoutPi.Accuracy;
Console.WriteLine(improved
    ? $"OK: at {options.LongContext} tokens PI + S2 + LoRA reaches {result.WithPi.Accuracy:P1} vs {result.Baseline.Accuracy:P1} unextended and {result.WithoutPi.Accuracy:P1} without PI."
    : $"FAILED: at {options.LongContext} tokens PI + S2 + LoRA reaches {result.WithPi.Accuracy:P1} vs {result.Baseline.Accuracy:P1} unextended (needs +20 points) and {result.WithoutPi.Accuracy:P1} without PI.");
return improved || !options.Quick ? 0 : 1;
