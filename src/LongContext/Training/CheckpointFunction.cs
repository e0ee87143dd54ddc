using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace LongContext.Training;

/// <summary>What a checkpoint node remembers between its forward and backward, apart from the saved input.</summary>
internal sealed class CheckpointState(Func<Tensor, IReadOnlyList<Tensor>, Tensor> block, int contextCount, IReadOnlyList<Tensor> parameters, bool preserveRngState)
{
    public Func<Tensor, IReadOnlyList<Tensor>, Tensor> Block { get; } = block;
    public int ContextCount { get; } = contextCount;
    public IReadOnlyList<Tensor> Parameters { get; } = parameters;
    public bool PreserveRngState { get; } = preserveRngState;
    /// <summary>CPU generator state before the first pass (CPU inputs).</summary>
    public Tensor? CpuRngState { get; set; }
    /// <summary>Seed given to the CUDA generator before the first pass (CUDA inputs).</summary>
    public long? CudaSeed { get; set; }
}

/// <summary>
/// The custom autograd node behind <see cref="ActivationCheckpoint"/>. Arguments: [state, input, context..., parameters...];
/// TorchSharp runs <see cref="forward"/> with gradients disabled and connects the node to every tensor argument.
/// </summary>
internal sealed class CheckpointFunction : SingleTensorFunction<CheckpointFunction>
{
    private const string StateKey = "checkpoint";

    public override string Name => "ActivationCheckpoint";

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var state = (CheckpointState)vars[0];
        var input = (Tensor)vars[1];
        if (state.PreserveRngState)
        {
            if (input.device_type == DeviceType.CUDA)
            {
                state.CudaSeed = DrawSeed();
                torch.cuda.manual_seed(state.CudaSeed.Value);
            }
            else
            {
                state.CpuRngState = torch.random.get_rng_state().DetachFromDisposeScope();
            }
        }
        var context = new List<Tensor>(state.ContextCount);
        for (int i = 0; i < state.ContextCount; i++) context.Add((Tensor)vars[2 + i]);
        ctx.save_data(StateKey, state);
        ctx.save_for_backward([input, .. context]);
        return state.Block(input, context);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var state = (CheckpointState)ctx.get_data(StateKey);
        // One entry per forward argument: none for the state object, the input, none for context, each parameter.
        var result = new List<Tensor>(2 + state.ContextCount + state.Parameters.Count) { null! };
        using var scope = NewDisposeScope();
        List<Tensor> savedTensors = ctx.get_saved_variables();
        Tensor saved = savedTensors[0];
        List<Tensor> context = savedTensors.GetRange(1, state.ContextCount);
        using (torch.enable_grad())
        {
            Tensor x = saved.detach().requires_grad_(saved.requires_grad);
            Tensor output = RecomputeWithSameRandomness(state, x, context);

            var wrt = new List<Tensor>();
            if (x.requires_grad) wrt.Add(x);
            wrt.AddRange(state.Parameters.Where(p => p.requires_grad));
            Tensor[] grads = wrt.Count == 0 || !output.requires_grad
                ? new Tensor[wrt.Count]
                : torch.autograd.grad(new List<Tensor> { output }, wrt, new List<Tensor> { gradOutput }, allow_unused: true).ToArray();

            int k = 0;
            result.Add(x.requires_grad ? Keep(grads[k++]) : null!);
            for (int i = 0; i < state.ContextCount; i++) result.Add(null!);
            foreach (Tensor p in state.Parameters)
                result.Add(p.requires_grad ? Keep(grads[k++]) : null!);
        }
        state.CpuRngState?.Dispose();
        state.CpuRngState = null;
        return result;
    }

    private static Tensor RecomputeWithSameRandomness(CheckpointState state, Tensor x, List<Tensor> context)
    {
        if (state.CpuRngState is not null)
        {
            using Tensor current = torch.random.get_rng_state();
            torch.random.set_rng_state(state.CpuRngState);
            try { return state.Block(x, context); }
            finally { torch.random.set_rng_state(current); }
        }
        if (state.CudaSeed is long seed)
        {
            torch.cuda.manual_seed(seed);
            try { return state.Block(x, context); }
            finally { torch.cuda.manual_seed(DrawSeed()); }
        }
        return state.Block(x, context);
    }

    /// <summary>A gradient that outlives the backward's dispose scope (null stays null: no gradient).</summary>
    private static Tensor Keep(Tensor? grad) => grad is null || grad.IsInvalid ? null! : grad.MoveToOuterDisposeScope();

    private static long DrawSeed()
    {
        using Tensor s = torch.randint(0, int.MaxValue, [1], dtype: ScalarType.Int64);
        return s.item<long>();
    }
}
