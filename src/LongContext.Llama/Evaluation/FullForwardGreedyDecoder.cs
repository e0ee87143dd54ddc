using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama.Evaluation;

/// <summary>
/// Greedy decoding by running the whole sequence through the model for every new token (no KV cache) and taking the
/// argmax of the last position's logits, computed from the last hidden state only (never the (N, vocab) logits).
/// Exact but quadratic in the answer length; the passkey answers are at most 6 tokens. A cached generator can
/// replace it through <see cref="IGreedyDecoder"/>.
/// </summary>
public sealed class FullForwardGreedyDecoder : IGreedyDecoder
{
    private readonly LlamaForCausalLM model;

    /// <summary>Decodes with <paramref name="model"/> in its current mode (put it in eval mode first).</summary>
    /// <param name="model">The model.</param>
    public FullForwardGreedyDecoder(LlamaForCausalLM model) => this.model = model ?? throw new ArgumentNullException(nameof(model));

    /// <inheritdoc />
    /// <exception cref="ArgumentException">An empty prompt.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A prompt id outside the model's vocabulary (index and value named), or <paramref name="count"/> below 1.</exception>
    public long[] Generate(IReadOnlyList<long> prompt, int count)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0) throw new ArgumentException("the prompt must hold at least one token.", nameof(prompt));
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, $"{nameof(count)} must be at least 1; got {count}.");
        int vocab = model.Config.VocabSize;
        for (int i = 0; i < prompt.Count; i++)
            if (prompt[i] < 0 || prompt[i] >= vocab)
                throw new ArgumentOutOfRangeException(nameof(prompt), prompt[i],
                    $"prompt token {i} is id {prompt[i]}, outside the model's vocabulary [0, {vocab}); is the tokenizer the model's?");
        using var noGrad = torch.no_grad();
        Device device = LlamaHead.Weight(model).device;
        var sequence = prompt.ToList();
        var result = new long[count];
        for (int i = 0; i < count; i++)
        {
            using var scope = NewDisposeScope();
            Tensor ids = torch.tensor(sequence.ToArray(), dtype: ScalarType.Int64, device: device).unsqueeze(0);
            Tensor positions = torch.arange(sequence.Count, dtype: ScalarType.Int64, device: device).unsqueeze(0);
            Tensor last = model.Model.forward(ids, positions, null).select(1, sequence.Count - 1);      // (1, H)
            long next = last.matmul(LlamaHead.Weight(model).t()).argmax(-1).cpu().item<long>();
            result[i] = next;
            sequence.Add(next);
        }
        return result;
    }
}
