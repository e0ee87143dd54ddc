using System.Globalization;

namespace LongContext.Llama.FineTuning;

/// <summary>Where a training run stands after an update (what the progress callback receives and the CSV log holds).</summary>
/// <param name="Step">Updates done.</param>
/// <param name="TotalSteps">Updates of the run.</param>
/// <param name="Loss">Mean loss of the update's micro-batches over their labelled targets.</param>
/// <param name="LearningRate">Learning rate of the update (first group).</param>
/// <param name="GradNorm">Total gradient norm before clipping.</param>
/// <param name="TokensPerSecond">Tokens trained per second over this session's updates.</param>
/// <param name="Elapsed">Time since this session's first update.</param>
/// <param name="Remaining">Estimated time to the last update at this session's rate.</param>
/// <param name="EvaluationLoss">Mean loss of the periodic evaluation at this update, or null.</param>
public sealed record TrainerProgress(long Step, long TotalSteps, double Loss, double LearningRate, double GradNorm,
    double TokensPerSecond, TimeSpan Elapsed, TimeSpan Remaining, double? EvaluationLoss)
{
    /// <summary>A one-line progress bar: <c>[#####.....] 50/100 loss 2.345 lr 2.0e-05 |g| 0.81 1234 tok/s ETA 00:12:03</c>.</summary>
    public override string ToString()
    {
        int filled = (int)(20 * Step / Math.Max(1, TotalSteps));
        string eval = EvaluationLoss is double e ? string.Create(CultureInfo.InvariantCulture, $" eval {e:F3}") : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', 20 - filled)}] {Step}/{TotalSteps} loss {Loss:F3} lr {LearningRate:0.0e+00} |g| {GradNorm:F2} {TokensPerSecond:F0} tok/s ETA {Remaining:hh\\:mm\\:ss}{eval}");
    }
}
