using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>A source of training batches with a resumable position.</summary>
public interface ITrainingBatches
{
    /// <summary>The next micro-batch: input ids (B, L) int64 and labels (B, L) int64 aligned with them (-100 ignored).</summary>
    (Tensor InputIds, Tensor Labels) Next();

    /// <summary>The position of the next batch, opaque to the trainer (saved with the training state).</summary>
    string Cursor { get; }

    /// <summary>Continues from a position <see cref="Cursor"/> gave.</summary>
    /// <param name="cursor">A cursor of this source.</param>
    void Seek(string cursor);
}
