using LongContext.Llama;
using LongContext.Llama.Evaluation;
using LongContext.Llama.Generation;

namespace LongContext.Demo.Experiment;

/// <summary>
/// The passkey test's greedy decoding through the library's KV-cache generator (one prefill, then one position per
/// token) instead of <see cref="FullForwardGreedyDecoder"/>'s full forward per token; the generator is exact
/// against full forwards under every rope type, so the answers are the same, faster.
/// </summary>
/// <param name="model">The model (put in eval mode by the evaluation).</param>
public sealed class CachedGreedyDecoder(LlamaForCausalLM model) : IGreedyDecoder
{
    private readonly LlamaGenerator generator = new(model);

    /// <inheritdoc />
    public long[] Generate(IReadOnlyList<long> prompt, int count)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var result = generator.Generate(prompt.Select(t => checked((int)t)).ToList(), new DecodingOptions { MaxNewTokens = count, Greedy = true });
        return result.TokenIds.Select(t => (long)t).ToArray();
    }
}
