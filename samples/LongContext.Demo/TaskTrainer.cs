using LongContext.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Demo;

/// <summary>One point of a training curve (mean over the steps since the previous point).</summary>
/// <param name="Run">Which training run.</param>
/// <param name="Step">Global step (fine-tuning steps continue after the short-context steps).</param>
/// <param name="Loss">Mean answer cross-entropy.</param>
/// <param name="Accuracy">Mean answer accuracy.</param>
public sealed record CurvePoint(string Run, int Step, double Loss, double Accuracy);

/// <summary>Loss and accuracy of a model on a set of sequences.</summary>
/// <param name="Loss">Mean cross-entropy of the answers.</param>
/// <param name="Accuracy">Fraction of answers predicted exactly (argmax).</param>
public sealed record Score(double Loss, double Accuracy);

/// <summary>Training and evaluation loops of the demo on <see cref="KeyValueRetrievalTask"/>.</summary>
public sealed class TaskTrainer(KeyValueRetrievalTask task, Device device, int seed)
{
    private const int CurveEvery = 10;

    /// <summary>
    /// Trains the parameters of <paramref name="model"/> that require gradients with AdamW (linear warm-up over
    /// 5% of the steps, cosine decay, gradient clipping at 1.0) on fresh batches of <paramref name="length"/> tokens.
    /// </summary>
    /// <param name="model">The model (left in training mode).</param>
    /// <param name="run">Name of the run (progress bar, curve).</param>
    /// <param name="length">Sequence length.</param>
    /// <param name="steps">Optimizer steps.</param>
    /// <param name="batch">Sequences per step.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="stepOffset">Added to the step numbers of the curve.</param>
    /// <returns>The training curve.</returns>
    public List<CurvePoint> Train(LlamaForCausalLM model, string run, int length, int steps, int batch, double learningRate, int stepOffset)
    {
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        if (parameters.Count == 0) throw new InvalidOperationException($"run '{run}': the model has no trainable parameter.");
        using var optimizer = torch.optim.AdamW(parameters, learningRate, beta1: 0.9, beta2: 0.98, weight_decay: 0.0);
        int warmup = Math.Max(1, steps / 20);
        var schedule = torch.optim.lr_scheduler.LambdaLR(optimizer,
            s => Math.Min(1.0, (s + 1.0) / warmup) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(s, steps) / steps)));
        var random = new Random(Seeds.Derive(seed, run, length));
        var curve = new List<CurvePoint>();
        var bar = new ProgressBar(run, steps);
        double lossSum = 0, accSum = 0;
        int window = 0;
        model.train();
        for (int step = 0; step < steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            var (ids, labels) = task.Batch(batch, length, random, device);
            var (loss, correct, count) = Forward(model, ids, labels);
            optimizer.zero_grad();
            loss.backward();
            torch.nn.utils.clip_grad_norm_(parameters, 1.0);
            optimizer.step();
            schedule.step();
            lossSum += loss.item<float>();
            accSum += correct.item<long>() / (double)count.item<long>();
            window++;
            if (window == CurveEvery || step == steps - 1)
            {
                curve.Add(new CurvePoint(run, stepOffset + step + 1, lossSum / window, accSum / window));
                bar.Report(step + 1, $"loss {lossSum / window:F3} acc {accSum / window:P0}");
                lossSum = accSum = 0;
                window = 0;
            }
        }
        var last = curve[^1];
        bar.Complete($"loss {last.Loss:F3} acc {last.Accuracy:P0}");
        return curve;
    }

    /// <summary>Scores the model (in evaluation mode, so full attention) on a fixed, seeded set of sequences.</summary>
    /// <param name="model">The model.</param>
    /// <param name="length">Sequence length.</param>
    /// <param name="samples">Number of sequences (the same ones for every model).</param>
    /// <returns>Loss and accuracy over all answers.</returns>
    public Score Evaluate(LlamaForCausalLM model, int length, int samples)
    {
        var random = new Random(Seeds.Derive(seed, "eval", length));
        model.eval();
        double lossSum = 0;
        long correctSum = 0, countSum = 0;
        using var noGrad = torch.no_grad();
        for (int done = 0; done < samples; done += 32)
        {
            using var scope = torch.NewDisposeScope();
            int n = Math.Min(32, samples - done);
            var (ids, labels) = task.Batch(n, length, random, device);
            var (loss, correct, count) = Forward(model, ids, labels);
            long c = count.item<long>();
            lossSum += loss.item<float>() * c;
            correctSum += correct.item<long>();
            countSum += c;
        }
        return new Score(lossSum / countSum, correctSum / (double)countSum);
    }

    private static (Tensor Loss, Tensor Correct, Tensor Count) Forward(LlamaForCausalLM model, Tensor ids, Tensor labels)
    {
        Tensor logits = model.forward(ids);
        Tensor loss = CausalLmLoss.Compute(logits, labels);
        long n = ids.shape[1];
        Tensor predicted = logits.narrow(1, 0, n - 1).argmax(-1);
        Tensor target = labels.narrow(1, 1, n - 1);
        Tensor scored = target.ne(KeyValueRetrievalTask.Ignore);
        return (loss, predicted.eq(target).logical_and(scored).sum(), scored.sum());
    }
}
