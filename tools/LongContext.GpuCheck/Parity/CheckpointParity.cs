using LongContext.GpuCheck.References;
using LongContext.GpuCheck.Results;
using LongContext.Training;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Parity;

/// <summary>
/// Activation checkpointing with dropout on the device (on CUDA the recompute replays the masks by reseeding the CUDA
/// generator). Two checkpointed blocks <c>h = dropout(x W^T + b, p = 0.3)</c> in a row, a tanh between and after; the
/// dropout masks are read off the forward outputs (a dropped element is exactly 0), and the reference is the same
/// computation in float64 with those masks: if the recompute in backward drew other masks, the gradients would not
/// match. Tolerances as <see cref="LoraParity"/>; the mask fractions are reported.
/// </summary>
internal static class CheckpointParity
{
    private const double P = 0.3;

    public static void Run(ParityContext c)
    {
        foreach (ScalarType dtype in c.Dtypes)
            c.Runner.Run("checkpoint", "2 checkpointed Linear+dropout(0.3) blocks, RNG replay", Errors.Name(dtype), r => Compare(c, r, dtype));
    }

    private static void Compare(ParityContext c, Recorder r, ScalarType dtype)
    {
        int t = c.Quick ? 64 : 1024, f = c.Quick ? 64 : 512;
        var gen = Inputs.Generator(4000);
        using Linear l1 = nn.Linear(f, f, hasBias: true, device: c.Device, dtype: dtype), l2 = nn.Linear(f, f, hasBias: true, device: c.Device, dtype: dtype);
        using (no_grad())
            foreach (Linear l in new[] { l1, l2 })
            {
                l.weight!.copy_(Inputs.Normal(gen, [f, f], 1.0 / Math.Sqrt(f)));
                l.bias!.copy_(Inputs.Normal(gen, [f], 0.1));
            }
        Tensor[] p1 = [l1.weight!, l1.bias!], p2 = [l2.weight!, l2.bias!];
        var (x, x64) = Inputs.Place(Inputs.Normal(gen, [t, f]), dtype, c.Device, requiresGrad: true);
        torch.manual_seed(4001);
        if (c.Device.type == DeviceType.CUDA) torch.cuda.manual_seed_all(4001);

        Tensor h1 = ActivationCheckpoint.Run(z => nn.functional.dropout(l1.forward(z), P, training: true), x, p1);
        Tensor h2 = ActivationCheckpoint.Run(z => nn.functional.dropout(l2.forward(z), P, training: true), h1.tanh(), p2);
        Tensor y = h2.tanh();
        var (g, g64) = Inputs.Place(Inputs.Normal(gen, y.shape), dtype, c.Device);
        var grads = autograd.grad([y], [x, .. p1, .. p2], [g]);

        Tensor m1 = h1.detach().cpu().ne(0).to(ScalarType.Float64), m2 = h2.detach().cpu().ne(0).to(ScalarType.Float64);
        var w = new[] { p1[0], p1[1], p2[0], p2[1] }.Select(p => p.detach().cpu().to(ScalarType.Float64).requires_grad_()).ToArray();
        Tensor h1r = (x64.matmul(w[0].t()) + w[1]) * m1 / (1 - P);
        Tensor h2r = (h1r.tanh().matmul(w[2].t()) + w[3]) * m2 / (1 - P);
        Tensor yr = h2r.tanh();
        var refs = autograd.grad([yr], [x64, .. w], [g64]);

        double kept1 = m1.mean().item<double>(), kept2 = m2.mean().item<double>();
        r.True("masks drawn", Math.Abs(kept1 - (1 - P)) < 0.05 && Math.Abs(kept2 - (1 - P)) < 0.05 && m1.ne(m2).any().item<bool>(),
            $"kept {kept1:F3} and {kept2:F3} of elements (expected {1 - P:F2}), masks differ between blocks");
        r.Close("h1", h1, h1r, LoraParity.Tolerance(h1, h1r));
        r.Close("y", y, yr, LoraParity.Tolerance(y, yr));
        string[] names = ["dx", "dW1", "db1", "dW2", "db2"];
        for (int i = 0; i < names.Length; i++)
            r.Close(names[i], grads[i], refs[i], LoraParity.Tolerance(grads[i], refs[i]));
    }
}
