namespace LongContext.Llama.Generation;

/// <summary>
/// Turns generated token ids into text as they arrive, characters whole (a character spread over several byte
/// tokens is returned with its last byte). <c>LongContext.Text</c>'s <c>IncrementalDecoder</c> is one:
/// <c>new TokenTextStream(decoder.Append, decoder.Flush)</c>.
/// </summary>
public interface ITokenTextStream
{
    /// <summary>Adds one token id; returns the text it completes (possibly empty).</summary>
    /// <param name="tokenId">The generated id.</param>
    string Append(int tokenId);

    /// <summary>Returns whatever is still held back and starts over.</summary>
    string Flush();
}

/// <summary>An <see cref="ITokenTextStream"/> from two delegates.</summary>
/// <param name="append">Adds one id and returns the text it completes.</param>
/// <param name="flush">Returns the held-back text.</param>
public sealed class TokenTextStream(Func<int, string> append, Func<string> flush) : ITokenTextStream
{
    private readonly Func<int, string> _append = append ?? throw new ArgumentNullException(nameof(append));
    private readonly Func<string> _flush = flush ?? throw new ArgumentNullException(nameof(flush));

    /// <inheritdoc />
    public string Append(int tokenId) => _append(tokenId);

    /// <inheritdoc />
    public string Flush() => _flush();
}
