namespace LongContext.Training;

/// <summary>Where a resumed run continues: what <see cref="TrainingState.Load"/> read besides the tensors it restored.</summary>
/// <param name="Step">Optimizer updates completed before the save (the schedule position: the next update uses <c>Factor(Step)</c>).</param>
/// <param name="DataCursor">The data loader's opaque position as it was given to <see cref="TrainingState.Save"/>, or null.</param>
public sealed record TrainingResumePoint(long Step, string? DataCursor);
