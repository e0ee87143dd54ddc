using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// Common plumbing: seeded random tensors on the chosen device and dtype, ownership of setup-time tensors and modules
/// (disposed in <see cref="Cleanup"/>), and the end-of-invocation synchronization. Benchmark bodies open their own
/// <c>torch.NewDisposeScope()</c> so an iteration leaves nothing behind.
/// </summary>
public abstract class BenchmarkBase
{
    private readonly List<IDisposable> owned = [];

    /// <summary>The device of this run.</summary>
    protected static Device Device => BenchSettings.Device;

    /// <summary>The compute dtype of this run.</summary>
    protected static ScalarType DType => BenchSettings.DType;

    /// <summary>Takes ownership of a setup-time object; it is disposed in <see cref="Cleanup"/>.</summary>
    protected T Keep<T>(T value) where T : IDisposable
    {
        owned.Add(value);
        return value;
    }

    /// <summary>Runs <paramref name="make"/> in a dispose scope (its temporaries are freed) and keeps the result until cleanup.</summary>
    protected Tensor Make(Func<Tensor> make)
    {
        using var scope = torch.NewDisposeScope();
        return Keep(make().DetachFromDisposeScope());
    }

    /// <summary>Standard-normal values times <paramref name="scale"/> on the run's device and dtype, kept until cleanup.</summary>
    protected Tensor Randn(long[] shape, double scale = 1.0, bool requiresGrad = false, ScalarType? dtype = null)
    {
        using var scope = torch.NewDisposeScope();
        Tensor t = torch.randn(shape, ScalarType.Float32, Device).mul_(scale).to(dtype ?? DType);
        if (requiresGrad) t.requires_grad_();
        return Keep(t.DetachFromDisposeScope());
    }

    /// <summary>Copies seeded random values (std <paramref name="scale"/>) into every parameter of a module, so no weight is zero.</summary>
    protected static void RandomizeParameters(nn.Module module, double scale)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var (_, p) in module.named_parameters())
        {
            p.copy_(torch.randn(p.shape, ScalarType.Float32, p.device).mul_(scale));
        }
    }

    /// <summary>Ends an invocation: waits for the device so the measured time covers the queued kernels.</summary>
    protected static void Sync() => BenchSettings.Synchronize();

    /// <summary>Backward pass that does not accumulate into .grad: gradients of <paramref name="output"/> (seeded by
    /// <paramref name="gradOutput"/>) with respect to <paramref name="inputs"/>, returned inside the caller's scope.</summary>
    protected static IList<Tensor> Backward(Tensor output, Tensor gradOutput, IList<Tensor> inputs)
        => torch.autograd.grad([output], inputs, [gradOutput]);

    /// <summary>
    /// One measured invocation: <paramref name="forward"/> without autograd for <see cref="Pass.Forward"/>, or with autograd
    /// followed by the backward pass seeded with <paramref name="gradOutput"/> into <paramref name="inputs"/> (gradients
    /// returned, not accumulated). Everything it allocates is disposed before it returns; the device is synchronized.
    /// </summary>
    protected static void Measure(Pass pass, Func<Tensor> forward, Tensor? gradOutput, IList<Tensor> inputs)
    {
        using var scope = torch.NewDisposeScope();
        if (pass == Pass.Forward)
        {
            using var noGrad = torch.no_grad();
            forward();
        }
        else
        {
            Tensor output = forward();
            Backward(output, gradOutput ?? throw new InvalidOperationException("gradOutput is needed for a backward pass."), inputs);
        }
        Sync();
    }

    /// <summary>Seeds the generators; call first in every [GlobalSetup].</summary>
    protected static void Seed() => BenchSettings.SeedAll();

    /// <summary>Disposes what setup kept. Called from every benchmark's [GlobalCleanup].</summary>
    protected void Cleanup()
    {
        for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        owned.Clear();
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }
}
