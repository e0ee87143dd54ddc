using LongContext.Llama;
using LongContext.Llama.Evaluation;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Demo.Experiment;

/// <summary>What one method measured.</summary>
/// <param name="Method">The method.</param>
/// <param name="Report">Perplexity and passkey by length (the library's report).</param>
/// <param name="TrainableParameters">Parameters trained (0 without training).</param>
/// <param name="TotalParameters">Parameters of the model as prepared.</param>
/// <param name="Training">The training run, or null.</param>
/// <param name="PeakRssBytes">Peak resident memory of the method's phase (<see cref="PeakMemory"/>).</param>
public sealed record MethodResult(Method Method, EvaluationReport Report, long TrainableParameters, long TotalParameters, TrainingSummary? Training, long PeakRssBytes)
{
    /// <summary>Perplexity at a length.</summary>
    /// <param name="length">The length.</param>
    public double Perplexity(int length) => Report.Perplexity.Single(r => r.Length == length).Perplexity;

    /// <summary>Passkey accuracy at a length.</summary>
    /// <param name="length">The length.</param>
    public PasskeyResult Passkey(int length) => Report.Passkey.Single(r => r.TargetLength == length);
}

/// <summary>
/// The experiment: the base pretrained at L, each method applied to a fresh copy with the same data and steps, each
/// evaluated at L, 2L, 4L with LongLoRA's sliding-window perplexity and passkey retrieval.
/// </summary>
public static class ExtensionExperiment
{
    /// <summary>The folder of the per-method training runs inside the demo's output folder (<c>runs/&lt;method&gt;</c>).</summary>
    public const string RunsFolderName = "runs";

    /// <summary>Runs every method of <paramref name="settings"/> on the base in <paramref name="baseFolder"/>.</summary>
    /// <param name="inputs">Data.</param>
    /// <param name="baseFolder">The pretrained base.</param>
    /// <param name="pretrain">The base's settings (checked against its manifest).</param>
    /// <param name="settings">Sizes.</param>
    /// <param name="outputFolder">Per-method trainer folders go under it.</param>
    /// <param name="device">Device.</param>
    public static IReadOnlyList<MethodResult> Run(DemoInputs inputs, string baseFolder, PretrainSettings pretrain, ExperimentSettings settings, string outputFolder, Device device)
    {
        int l = pretrain.Context, target = settings.Factor * l;
        int[] lengths = [l, 2 * l, target];
        using var tokens = inputs.EvaluationTokens(settings.EvalTokens);
        // The same rows for every method at the target length; the control gets the same number of tokens at L.
        var longRows = TrainingRows.Build(inputs.Training, inputs.Tokenizer, target, settings.Steps * settings.Batch, settings.PasskeyFraction, settings.Seed + 1);
        var shortRows = TrainingRows.Build(inputs.Training, inputs.Tokenizer, l, settings.Steps * settings.Batch * settings.Factor, settings.PasskeyFraction, settings.Seed + 1);
        var results = new List<MethodResult>();
        foreach (Method method in settings.Methods)
        {
            PeakMemory.Reset();
            torch.manual_seed(settings.Seed);
            using var model = TinyBase.Load(baseFolder, pretrain, inputs.Tokenizer.Fingerprint, device);
            var report = Methods.Prepare(model, method, target, gradientCheckpointing: false, settings.LoraRank);
            TrainingSummary? training = null;
            if (Methods.Trains(method))
            {
                int rowLength = Methods.TrainingLength(method, l, target);
                var (ids, labels) = rowLength == target ? longRows : shortRows;
                int batch = settings.Batch * (target / rowLength);
                string runFolder = Path.Combine(outputFolder, RunsFolderName, Methods.Key(method));
                training = Runs.Train(model, $"{Methods.Key(method)}: train at {rowLength}", ids, labels, rowLength, settings.Steps, batch,
                    new AdamWOptions { LearningRate = settings.LearningRate }, schedule: null, runFolder, saveAdapter: Methods.HasAdapter(method));
                // Every weight trained: no adapter to save, so the whole model is kept (fp32, as evaluated) for eval --model.
                if (!Methods.HasAdapter(method)) TinyBase.SaveModelFolder(model, Path.Combine(runFolder, Runs.ModelFolderName), ScalarType.Float32);
            }
            var evaluation = Runs.Evaluate(model, $"{Methods.Key(method)}: evaluate", tokens, inputs.Tokenizer, lengths, settings.PasskeyTrials, settings.EvalStep);
            long trainable = TrainableParameters.Select(model).Sum(p => p.Parameter.numel());
            long total = model.parameters().Sum(p => p.numel());
            results.Add(new MethodResult(method, evaluation, training is null ? 0 : trainable, total, training, PeakMemory.PeakBytes()));
        }
        return results;
    }
}
