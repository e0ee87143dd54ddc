using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// A learning-rate schedule (HF transformers' <c>constant_with_warmup</c>, <c>linear</c> or <c>cosine</c>), validated
/// where it is built: warmup non-negative, total steps at least the warmup. <see cref="Factor"/> is the pure
/// multiplier of step; <see cref="Apply"/> sets every parameter group's learning rate from it.
/// </summary>
/// <remarks>
/// Steps count optimizer updates (not micro-batches): the update made after <c>step</c> completed updates uses
/// <c>initial_lr * Factor(step)</c>, HF's <c>LambdaLR</c> convention (the first update of a warmed-up run has
/// learning rate 0). Call <see cref="Apply"/> with the number of updates done so far, before each
/// <c>optimizer.step()</c>.
/// </remarks>
public sealed record LearningRateSchedule
{
    private LearningRateSchedule(LearningRateScheduleKind kind, long warmupSteps, long? totalSteps, double cycles)
    {
        if (warmupSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, $"{nameof(warmupSteps)} must be non-negative; got {warmupSteps}.");
        if (totalSteps is long total && total < warmupSteps)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), total,
                $"{nameof(totalSteps)} must be at least {nameof(warmupSteps)} ({warmupSteps}); got {total}.");
        Kind = kind;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        Cycles = kind == LearningRateScheduleKind.Cosine ? Guard.Positive(cycles, nameof(cycles)) : 0;
    }

    /// <summary>The schedule's shape.</summary>
    public LearningRateScheduleKind Kind { get; }

    /// <summary>Updates of linear warmup from 0 to the base learning rate.</summary>
    public long WarmupSteps { get; }

    /// <summary>Updates of the whole run (null for <see cref="LearningRateScheduleKind.ConstantWithWarmup"/> without one).</summary>
    public long? TotalSteps { get; }

    /// <summary>Cosine waves over the decay (HF <c>num_cycles</c>); 0 for the other kinds.</summary>
    public double Cycles { get; }

    /// <summary>Linear warmup over <paramref name="warmupSteps"/> updates, then the base rate (LongLoRA: 20 warmup steps).</summary>
    /// <param name="warmupSteps">Warmup updates, non-negative.</param>
    /// <param name="totalSteps">Optional length of the run (recorded, checked against the warmup; the factor does not use it).</param>
    /// <exception cref="ArgumentOutOfRangeException">A negative warmup, or a total shorter than the warmup.</exception>
    public static LearningRateSchedule ConstantWithWarmup(long warmupSteps, long? totalSteps = null)
        => new(LearningRateScheduleKind.ConstantWithWarmup, warmupSteps, totalSteps, 0);

    /// <summary>Linear warmup, then linear decay to 0 at <paramref name="totalSteps"/>.</summary>
    /// <param name="warmupSteps">Warmup updates, non-negative.</param>
    /// <param name="totalSteps">Updates of the run, at least <paramref name="warmupSteps"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A negative warmup, or a total shorter than the warmup.</exception>
    public static LearningRateSchedule Linear(long warmupSteps, long totalSteps)
        => new(LearningRateScheduleKind.Linear, warmupSteps, totalSteps, 0);

    /// <summary>Linear warmup, then cosine decay (one half-wave to 0 at <paramref name="totalSteps"/> by default).</summary>
    /// <param name="warmupSteps">Warmup updates, non-negative.</param>
    /// <param name="totalSteps">Updates of the run, at least <paramref name="warmupSteps"/>.</param>
    /// <param name="cycles">Cosine waves (HF <c>num_cycles</c>, default 0.5), positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">A negative warmup, a total shorter than the warmup, or non-positive cycles.</exception>
    public static LearningRateSchedule Cosine(long warmupSteps, long totalSteps, double cycles = 0.5)
        => new(LearningRateScheduleKind.Cosine, warmupSteps, totalSteps, cycles);

    /// <summary>The multiplier of the base learning rate for the update after <paramref name="step"/> completed updates.</summary>
    /// <param name="step">Updates completed so far, non-negative.</param>
    public double Factor(long step) => Kind switch
    {
        LearningRateScheduleKind.ConstantWithWarmup => LearningRateScheduleMath.ConstantWithWarmup(step, WarmupSteps),
        LearningRateScheduleKind.Linear => LearningRateScheduleMath.Linear(step, WarmupSteps, TotalSteps!.Value),
        _ => LearningRateScheduleMath.Cosine(step, WarmupSteps, TotalSteps!.Value, Cycles),
    };

    /// <summary>
    /// Sets every parameter group's learning rate to its initial learning rate (the one it was created with) times
    /// <see cref="Factor"/>(<paramref name="step"/>); works for any TorchSharp optimizer with parameter groups.
    /// </summary>
    /// <param name="optimizer">The optimizer whose groups are set.</param>
    /// <param name="step">Updates completed so far, non-negative.</param>
    /// <returns>The factor applied.</returns>
    public double Apply(optim.Optimizer optimizer, long step)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        double factor = Factor(step);
        foreach (optim.ILearningRateController group in optimizer.ParamGroups)
            group.LearningRate = group.InitialLearningRate * factor;
        return factor;
    }
}
