using System.Text.Json.Nodes;
using LongContext.Llama;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Demo.Experiment;

/// <summary>Pretrains the tiny base at L from the seed (the <c>pretrain</c> command, and the demo when no base is shipped).</summary>
public static class Pretraining
{
    /// <summary>Pretrains every parameter, saves the base (bf16 + manifest) in <paramref name="folder"/>, and returns it loaded back.</summary>
    /// <param name="inputs">Data and tokenizer.</param>
    /// <param name="settings">Sizes and schedule.</param>
    /// <param name="folder">Destination of the base.</param>
    /// <param name="device">Device.</param>
    public static LlamaForCausalLM Run(DemoInputs inputs, PretrainSettings settings, string folder, Device device)
    {
        torch.manual_seed(settings.Seed);
        var config = settings.Config(inputs.Tokenizer.VocabSize);
        var (ids, labels) = TrainingRows.Build(inputs.Training, inputs.Tokenizer, settings.Context, settings.Steps * settings.Batch, settings.PasskeyFraction, settings.Seed);
        string runFolder = Path.Combine(Path.GetTempPath(), "longcontext-pretrain-" + Guid.NewGuid().ToString("N"));
        TrainingSummary summary;
        using (var model = new LlamaForCausalLM(config))
        {
            LlamaInitialization.Apply(model);
            model.to(device);
            summary = Runs.Train(model, $"pretrain at L={settings.Context}", ids, labels, settings.Context, settings.Steps, settings.Batch,
                new AdamWOptions { LearningRate = settings.LearningRate, WeightDecay = settings.WeightDecay, Beta2 = 0.95 },
                LearningRateSchedule.Cosine(settings.Steps / 20, settings.Steps), runFolder, saveAdapter: false);
            var measured = new JsonObject
            {
                ["train_seconds"] = Math.Round(summary.Seconds, 1),
                ["train_tokens_per_second"] = Math.Round(summary.TokensPerSecond, 1),
                ["final_train_loss"] = Math.Round(summary.FinalLoss, 4),
                ["machine"] = $"{Environment.ProcessorCount} cores, {torch.get_num_threads()} torch threads, load average at the end {LoadAverage()}",
            };
            TinyBase.Save(model, folder, settings, inputs.Tokenizer.Fingerprint, measured);
        }
        Directory.Delete(runFolder, recursive: true);
        return TinyBase.Load(folder, settings, inputs.Tokenizer.Fingerprint, device);
    }

    /// <summary>The 1-minute load average (Linux), or "n/a".</summary>
    public static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";
}
