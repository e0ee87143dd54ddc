namespace LongContext.Training;

/// <summary>
/// The learning-rate multipliers of HF transformers' schedules as pure functions of the optimizer step. HF wraps
/// them in <c>LambdaLR</c>: the update made after <c>step</c> completed updates uses <c>base_lr * factor(step)</c>, so
/// the first update (step 0) of a warmed-up schedule uses a learning rate of zero, exactly as HF does.
/// </summary>
public static class LearningRateScheduleMath
{
    /// <summary>HF <c>get_constant_schedule_with_warmup</c>: <c>step / max(1, warmup)</c> while <c>step &lt; warmup</c>, then 1.</summary>
    /// <param name="step">Optimizer updates completed so far, non-negative.</param>
    /// <param name="warmupSteps">Warmup length, non-negative.</param>
    public static double ConstantWithWarmup(long step, long warmupSteps)
    {
        Check(step, warmupSteps);
        return step < warmupSteps ? Warmup(step, warmupSteps) : 1.0;
    }

    /// <summary>
    /// HF <c>get_linear_schedule_with_warmup</c>: the warmup ramp, then
    /// <c>max(0, (total - step) / max(1, total - warmup))</c>.
    /// </summary>
    /// <param name="step">Optimizer updates completed so far, non-negative.</param>
    /// <param name="warmupSteps">Warmup length, non-negative.</param>
    /// <param name="totalSteps">Number of optimizer updates of the run, at least <paramref name="warmupSteps"/>.</param>
    public static double Linear(long step, long warmupSteps, long totalSteps)
    {
        Check(step, warmupSteps, totalSteps);
        if (step < warmupSteps) return Warmup(step, warmupSteps);
        return Math.Max(0.0, (double)(totalSteps - step) / Math.Max(1L, totalSteps - warmupSteps));
    }

    /// <summary>
    /// HF <c>get_cosine_schedule_with_warmup</c>: the warmup ramp, then with
    /// <c>progress = (step - warmup) / max(1, total - warmup)</c> the factor
    /// <c>max(0, 0.5 * (1 + cos(pi * cycles * 2 * progress)))</c>.
    /// </summary>
    /// <param name="step">Optimizer updates completed so far, non-negative.</param>
    /// <param name="warmupSteps">Warmup length, non-negative.</param>
    /// <param name="totalSteps">Number of optimizer updates of the run, at least <paramref name="warmupSteps"/>.</param>
    /// <param name="cycles">Number of cosine waves (HF <c>num_cycles</c>); 0.5 (the default) decays once from 1 to 0.</param>
    public static double Cosine(long step, long warmupSteps, long totalSteps, double cycles = 0.5)
    {
        Check(step, warmupSteps, totalSteps);
        Guard.Positive(cycles, nameof(cycles));
        if (step < warmupSteps) return Warmup(step, warmupSteps);
        double progress = (double)(step - warmupSteps) / Math.Max(1L, totalSteps - warmupSteps);
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * cycles * 2.0 * progress)));
    }

    private static double Warmup(long step, long warmupSteps) => (double)step / Math.Max(1L, warmupSteps);

    private static void Check(long step, long warmupSteps)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, $"{nameof(step)} must be non-negative; got {step}.");
        if (warmupSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, $"{nameof(warmupSteps)} must be non-negative; got {warmupSteps}.");
    }

    private static void Check(long step, long warmupSteps, long totalSteps)
    {
        Check(step, warmupSteps);
        if (totalSteps < warmupSteps)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps,
                $"{nameof(totalSteps)} must be at least {nameof(warmupSteps)} ({warmupSteps}); got {totalSteps}.");
    }
}
