using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// A source of training micro-batches with a resumable position: the cursor is saved with the training state
/// (<see cref="TrainingState.Save"/>) and handed back to <see cref="Seek"/> on resume
/// (<see cref="TrainingResumePoint.DataCursor"/>, when the state has one).
/// </summary>
public interface ITrainingBatches
{
    /// <summary>The next micro-batch: input ids (B, L) int64 and labels (B, L) int64 aligned with them (-100 ignored).</summary>
    (Tensor InputIds, Tensor Labels) Next();

    /// <summary>The position of the next batch, opaque to the trainer (saved with the training state).</summary>
    string Cursor { get; }

    /// <summary>Continues from a position <see cref="Cursor"/> gave.</summary>
    /// <param name="cursor">A cursor of this source.</param>
    /// <exception cref="ArgumentNullException"><paramref name="cursor"/> is null.</exception>
    /// <exception cref="ArgumentException">
    /// <paramref name="cursor"/> is not one this kind of source gives; implementations name the value and their format
    /// and leave the position unchanged.
    /// </exception>
    void Seek(string cursor);
}
