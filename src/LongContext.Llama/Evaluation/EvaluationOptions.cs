using LongContext.Training;

namespace LongContext.Llama.Evaluation;

/// <summary>What <see cref="LlamaEvaluation.Run"/> measures; a null part is skipped.</summary>
public sealed record EvaluationOptions
{
    private readonly int _chunkSize = ChunkedCausalLmLoss.DefaultChunkSize;

    /// <summary>Sliding-window perplexity settings; null skips perplexity. Default: both protocols at 4096.</summary>
    public PerplexityOptions? Perplexity { get; init; } = new();

    /// <summary>Passkey settings; null skips the passkey test. Default: LongLoRA's (10 trials) at 1000, 2000, 4000 tokens.</summary>
    public PasskeyOptions? Passkey { get; init; } = new();

    /// <summary>
    /// Positions per chunk of the perplexity loss (the (chunk, vocab) logits are the largest buffer), at least 1.
    /// Default <see cref="ChunkedCausalLmLoss.DefaultChunkSize"/>. Another value with <see cref="Perplexity"/> null
    /// is refused by <see cref="LlamaEvaluation.Run"/> (nothing would read it).
    /// </summary>
    public int ChunkSize
    {
        get => _chunkSize;
        init => _chunkSize = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(ChunkSize), value, $"{nameof(ChunkSize)} must be at least 1; got {value}.");
    }

    /// <summary>Refuses settings that the other settings leave unused (see <see cref="ChunkSize"/> and <see cref="PerplexityOptions"/>).</summary>
    /// <param name="paramName">The parameter the options came in as, for the exception.</param>
    internal void CheckSettingsUsed(string paramName)
    {
        if (Perplexity is null && _chunkSize != ChunkedCausalLmLoss.DefaultChunkSize)
            throw new ArgumentException(
                $"{nameof(ChunkSize)} {_chunkSize} sizes the perplexity loss's chunks, and {nameof(Perplexity)} is null (perplexity is skipped); " +
                $"leave {nameof(ChunkSize)} at its default ({ChunkedCausalLmLoss.DefaultChunkSize}) or set {nameof(Perplexity)}.", paramName);
        Perplexity?.CheckSettingsUsed(paramName);
    }
}
