using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>What the chunked loss node remembers besides its saved tensors.</summary>
internal sealed class ChunkedCrossEntropyState(int chunkSize, bool mean)
{
    public int ChunkSize { get; } = chunkSize;
    public bool Mean { get; } = mean;
    /// <summary>Whether the hidden states and the weight required gradients when forward ran.</summary>
    public bool WantHidden { get; set; }
    public bool WantWeight { get; set; }
    /// <summary>Labelled targets counted in forward (the divisor of the mean).</summary>
    public long Targets { get; set; }
}

/// <summary>
/// The autograd node behind <see cref="ChunkedCausalLmLoss"/>. Arguments: [hidden (B, N, H), weight (V, H),
/// labels (B, N), state]. Forward runs without gradients and keeps no logits; backward recomputes them per chunk.
/// </summary>
internal sealed class ChunkedCrossEntropyFunction : autograd.SingleTensorFunction<ChunkedCrossEntropyFunction>
{
    private const string StateKey = "chunked_ce";

    public override string Name => "ChunkedCausalLmLoss";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var labels = (Tensor)vars[2];
        var state = (ChunkedCrossEntropyState)vars[3];
        state.WantHidden = hidden.requires_grad;
        state.WantWeight = weight.requires_grad;
        ctx.save_for_backward([hidden, weight, labels]);
        ctx.save_data(StateKey, state);
        return Forward(hidden, weight, labels, state);
    }

    /// <summary>The loss value; also the no-grad path. Sets <see cref="ChunkedCrossEntropyState.Targets"/>.</summary>
    internal static Tensor Forward(Tensor hidden, Tensor weight, Tensor labels, ChunkedCrossEntropyState state)
    {
        using var scope = NewDisposeScope();
        ScalarType lossType = LossDtype(hidden.dtype);
        Tensor total = zeros([], ScalarType.Float64, hidden.device);
        long targets = labels.narrow(1, 1, labels.size(1) - 1).ne(ChunkedCausalLmLoss.IgnoreIndex).count_nonzero().item<long>();
        foreach (var (b, start, length) in Chunks(hidden.size(0), hidden.size(1), state.ChunkSize))
        {
            using var chunk = NewDisposeScope();
            Tensor h = hidden[b].narrow(0, start, length);                       // (c, H)
            var (index, valid) = Targets(labels, b, start, length);
            Tensor logits = h.matmul(weight.t()).to(lossType);                   // (c, V)
            Tensor picked = logits.gather(1, index.unsqueeze(1)).squeeze(1);
            Tensor perToken = logits.logsumexp(1).sub_(picked).mul_(valid);
            total.add_(perToken.sum(ScalarType.Float64));
        }
        state.Targets = targets;
        Tensor loss = state.Mean ? total / targets : total;
        return loss.to(lossType).MoveToOuterDisposeScope();
    }

    public override List<Tensor?> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var state = (ChunkedCrossEntropyState)ctx.get_data(StateKey);
        List<Tensor> saved = ctx.get_saved_variables();
        Tensor hidden = saved[0], weight = saved[1], labels = saved[2];
        bool wantHidden = state.WantHidden, wantWeight = state.WantWeight;
        using var scope = NewDisposeScope();
        ScalarType lossType = LossDtype(hidden.dtype);
        // d loss / d logit = g / divisor * (softmax - onehot) on labelled rows, 0 elsewhere.
        Tensor scale = gradOutput.to(ScalarType.Float64).div(state.Mean ? state.Targets : 1).to(lossType);
        Tensor? dHidden = wantHidden ? zeros_like(hidden) : null;
        Tensor? dWeight = wantWeight ? zeros(weight.shape, lossType, weight.device) : null;
        foreach (var (b, start, length) in Chunks(hidden.size(0), hidden.size(1), state.ChunkSize))
        {
            using var chunk = NewDisposeScope();
            Tensor h = hidden[b].narrow(0, start, length);
            var (index, valid) = Targets(labels, b, start, length);
            Tensor probabilities;
            using (Tensor logits = h.matmul(weight.t()).to(lossType))
                probabilities = logits.softmax(1);
            using (Tensor minusOne = full([length, 1], -1.0, lossType, hidden.device))
                probabilities.scatter_add_(1, index.unsqueeze(1), minusOne);
            probabilities.mul_(valid.unsqueeze(1)).mul_(scale);
            Tensor dLogits = probabilities.to(hidden.dtype);                     // (c, V), a no-op for float32 and float64
            if (dHidden is not null) dHidden[b].narrow(0, start, length).copy_(dLogits.matmul(weight));
            if (dWeight is not null) dWeight.add_(dLogits.t().matmul(h));
        }
        var result = new List<Tensor?>
        {
            dHidden?.MoveToOuterDisposeScope(),
            dWeight?.to(weight.dtype).MoveToOuterDisposeScope(),
            null,
            null,
        };
        return result;
    }

    /// <summary>Target ids (clamped to 0 where ignored) and the labelled mask in the loss dtype, for one chunk.</summary>
    private static (Tensor Index, Tensor Valid) Targets(Tensor labels, long b, long start, long length)
    {
        Tensor y = labels[b].narrow(0, start + 1, length).to(ScalarType.Int64);
        Tensor keep = y.ne(ChunkedCausalLmLoss.IgnoreIndex);
        return (y.masked_fill(keep.logical_not(), 0), keep);
    }

    /// <summary>(row, first predicting position, length) of every chunk: positions 0..N-2 of each row.</summary>
    private static IEnumerable<(long Row, long Start, long Length)> Chunks(long batch, long n, int chunkSize)
    {
        long positions = n - 1;
        for (long b = 0; b < batch; b++)
            for (long s = 0; s < positions; s += chunkSize)
                yield return (b, s, Math.Min(chunkSize, positions - s));
    }

    private static ScalarType LossDtype(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
}
