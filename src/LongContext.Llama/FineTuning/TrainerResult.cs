namespace LongContext.Llama.FineTuning;

/// <summary>What a <see cref="LongLoraTrainer"/> run did and wrote.</summary>
/// <param name="Steps">Updates done in all (this session and any it resumed).</param>
/// <param name="ResumedFrom">The update this session started at (0 for a fresh run).</param>
/// <param name="Log">This session's progress records.</param>
/// <param name="LogPath">The CSV log (all sessions).</param>
/// <param name="StatePath">The training state (resume point).</param>
/// <param name="AdapterFolder">The peft adapter saved at the end, or null when <see cref="LongLoraTrainerOptions.SaveAdapter"/> is false.</param>
public sealed record TrainerResult(long Steps, long ResumedFrom, IReadOnlyList<TrainerProgress> Log, string LogPath, string StatePath, string? AdapterFolder);
