using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// Activation (gradient) checkpointing: runs a block without keeping its intermediate activations and recomputes
/// them during the backward pass, trading one extra forward of the block for the memory of its activations.
/// </summary>
/// <remarks>
/// <para>The first forward runs under <c>no_grad</c> inside a custom autograd node whose inputs are the block input
/// and the given parameters; only the block input is saved. In backward the block runs again with gradients
/// enabled on a detached copy of the input, and the gradients of the input and of every parameter that requires
/// them are computed from that recomputed graph and handed back through the node's edges, so parameters receive
/// their <c>.grad</c> exactly as without checkpointing (frozen parameters, <c>requires_grad == false</c>, get none).</para>
/// <para>The block must be a function of its input and of the listed parameters only: any other tensor it reads
/// that requires gradients would get none. Other tensors it captures (rotary cos/sin, masks) must not require
/// gradients.</para>
/// <para>Randomness (dropout): with <c>preserveRngState</c> the recompute sees the same random numbers as the first
/// pass. On the CPU the default generator's state is saved before the first pass and restored around the
/// recompute (the caller's generator state is put back afterwards, so the random stream is exactly that of a run
/// without checkpointing). TorchSharp 0.107 cannot read the CUDA generator's state, so for CUDA inputs a seed is
/// drawn from the CPU generator, the CUDA generator is seeded with it before the first pass and again before the
/// recompute, and reseeded from the CPU generator afterwards: the masks match between the two passes, the run is
/// reproducible under a fixed seed, but the random stream differs from a run without checkpointing.</para>
/// </remarks>
public static class ActivationCheckpoint
{
    /// <summary>
    /// Runs <paramref name="block"/> on <paramref name="input"/> with activation checkpointing. When gradients are
    /// disabled, or neither the input nor any parameter requires them, the block simply runs.
    /// </summary>
    /// <param name="block">The computation, a pure function of its input and <paramref name="parameters"/>; it
    /// returns a single floating-point tensor of any shape.</param>
    /// <param name="input">Block input, any shape and floating dtype (e.g. hidden states (B, N, hidden)).</param>
    /// <param name="parameters">Every tensor the block reads that may require gradients (usually
    /// <c>module.parameters()</c>); those with <c>requires_grad</c> receive gradients.</param>
    /// <param name="preserveRngState">Replay the same random numbers in the recompute (see remarks); turn off only
    /// when the block draws no random numbers, to save the state copy.</param>
    /// <returns>The block output, attached to the autograd graph through the checkpoint node.</returns>
    public static Tensor Run(Func<Tensor, Tensor> block, Tensor input, IEnumerable<Tensor> parameters, bool preserveRngState = true)
    {
        ArgumentNullException.ThrowIfNull(block);
        return Run((x, _) => block(x), input, [], parameters, preserveRngState);
    }

    /// <summary>
    /// Runs <paramref name="block"/> with activation checkpointing, handing it non-differentiable context tensors
    /// (position ids, rotary tables, masks) that the checkpoint node keeps alive until the recompute: pass such
    /// tensors here rather than capturing them in the delegate, since a captured tensor may be disposed (by the
    /// caller's dispose scope) before backward runs.
    /// </summary>
    /// <param name="block">The computation: (input, context) to a single floating-point tensor.</param>
    /// <param name="input">Block input, any shape and floating dtype (e.g. hidden states (B, N, hidden)).</param>
    /// <param name="context">Tensors the block reads that must not require gradients, handed back in order.</param>
    /// <param name="parameters">Every tensor the block reads that may require gradients; those with
    /// <c>requires_grad</c> receive gradients.</param>
    /// <param name="preserveRngState">Replay the same random numbers in the recompute (see remarks).</param>
    /// <returns>The block output, attached to the autograd graph through the checkpoint node.</returns>
    public static Tensor Run(Func<Tensor, IReadOnlyList<Tensor>, Tensor> block, Tensor input, IReadOnlyList<Tensor> context,
        IEnumerable<Tensor> parameters, bool preserveRngState = true)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(parameters);
        var list = parameters.ToList();
        for (int i = 0; i < list.Count; i++)
            if (list[i] is null) throw new ArgumentException($"parameters[{i}] is null; expected a tensor.", nameof(parameters));
        for (int i = 0; i < context.Count; i++)
        {
            if (context[i] is null) throw new ArgumentException($"context[{i}] is null; expected a tensor.", nameof(context));
            if (context[i].requires_grad)
                throw new ArgumentException($"context[{i}] requires gradients, which a checkpoint does not propagate to context tensors; pass it as a parameter or detach it.", nameof(context));
        }
        if (!torch.is_grad_enabled() || (!input.requires_grad && !list.Any(p => p.requires_grad)))
            return block(input, context);

        var args = new object[2 + context.Count + list.Count];
        args[0] = new CheckpointState(block, context.Count, list, preserveRngState);
        args[1] = input;
        for (int i = 0; i < context.Count; i++) args[2 + i] = context[i];
        for (int i = 0; i < list.Count; i++) args[2 + context.Count + i] = list[i];
        return CheckpointFunction.apply(args);
    }
}
