namespace LongContext.Training;

/// <summary>What one accumulated optimizer step saw.</summary>
/// <param name="Loss">Mean cross-entropy over every labelled target of the step's micro-batches (what one batch of all their rows would report).</param>
/// <param name="Targets">Labelled next-token targets in the step (the divisor).</param>
/// <param name="MicroBatches">Micro-batches run.</param>
public readonly record struct AccumulatedLoss(double Loss, long Targets, int MicroBatches);
