namespace LongContext.Training;

/// <summary>The shape of a learning-rate schedule after its linear warmup (HF transformers' <c>SchedulerType</c> names).</summary>
public enum LearningRateScheduleKind
{
    /// <summary>Constant after a linear warmup: HF <c>constant_with_warmup</c>, LongLoRA's schedule.</summary>
    ConstantWithWarmup,

    /// <summary>Linear decay to zero at the last step after a linear warmup: HF <c>linear</c>.</summary>
    Linear,

    /// <summary>Cosine decay after a linear warmup: HF <c>cosine</c> (<c>get_cosine_schedule_with_warmup</c>).</summary>
    Cosine,
}
