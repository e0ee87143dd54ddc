using LongContext.GpuCheck.References;
using LongContext.GpuCheck.Results;
using LongContext.Lora;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Parity;

/// <summary>
/// <see cref="LoraLinear"/> on the device, forward and the gradients of x, A and B, against
/// <c>y = x W^T + b + s (x A^T) B^T</c> in float64 over the values the layer holds. Variants: fused and unfused over a
/// float32 base; over a bfloat16 base with float32 adapters (peft's autocast, the unfused path) and with bfloat16
/// adapters (fused and unfused); rsLoRA scaling in one of them. Tolerance per compared tensor, in rounding units of its
/// dtype at the reference's scale: 64 (float32: sums over a few hundred products) and 8 (bfloat16: a handful of
/// roundings of bf16 operands and results, accumulation in float32).
/// </summary>
internal static class LoraParity
{
    private sealed record Variant(string Name, ScalarType BaseDtype, bool Autocast, bool Fused, bool RsLora);

    public static void Run(ParityContext c)
    {
        var variants = new List<Variant>();
        if (c.Dtypes.Contains(ScalarType.Float32))
        {
            variants.Add(new("fused, float32 base", ScalarType.Float32, true, true, false));
            variants.Add(new("unfused, float32 base, rsLoRA", ScalarType.Float32, true, false, true));
        }
        if (c.Dtypes.Contains(ScalarType.BFloat16))
        {
            variants.Add(new("bfloat16 base, float32 adapters (autocast)", ScalarType.BFloat16, true, true, false));
            variants.Add(new("fused, bfloat16 base and adapters", ScalarType.BFloat16, false, true, false));
            variants.Add(new("unfused, bfloat16 base and adapters, rsLoRA", ScalarType.BFloat16, false, false, true));
        }
        int t = c.Quick ? 32 : 512, fin = c.Quick ? 96 : 1024, fout = c.Quick ? 80 : 768;
        foreach (Variant v in variants)
            c.Runner.Run("lora", $"LoraLinear {v.Name} x({t},{fin}) W({fout},{fin}) r8", Errors.Name(v.BaseDtype), r => Compare(c, r, v, t, fin, fout));
    }

    /// <summary>Tolerance in rounding units of the compared tensor's dtype.</summary>
    internal static double Tolerance(Tensor actual, Tensor reference) => actual.dtype switch
    {
        ScalarType.Float32 => Errors.Ulps(ScalarType.Float32, reference, 64),
        ScalarType.Float64 => Errors.Ulps(ScalarType.Float64, reference, 64),
        var d => Errors.Ulps(d, reference, 8),
    };

    private static void Compare(ParityContext c, Recorder r, Variant v, int t, int fin, int fout)
    {
        var gen = Inputs.Generator(2000 + fin);
        Linear linear = nn.Linear(fin, fout, hasBias: true, device: c.Device, dtype: v.BaseDtype);
        using (no_grad())
        {
            linear.weight!.copy_(Inputs.Normal(gen, [fout, fin], 1.0 / Math.Sqrt(fin)));
            linear.bias!.copy_(Inputs.Normal(gen, [fout], 0.1));
        }
        var options = new LoraOptions { Rank = 8, Alpha = 16, UseRsLora = v.RsLora, AutocastAdapterDtype = v.Autocast };
        using var lora = LoraLinear.Wrap(linear, options);
        lora.FusedForward = v.Fused;
        Tensor a = lora.LoraA("default"), b = lora.LoraB("default");
        using (no_grad())
        {
            a.copy_(Inputs.Normal(gen, a.shape, 1.0 / Math.Sqrt(fin)));
            b.copy_(Inputs.Normal(gen, b.shape, 0.5));
        }
        var (x, x64) = Inputs.Place(Inputs.Normal(gen, [t, fin]), v.BaseDtype, c.Device, requiresGrad: true);
        Tensor y = lora.forward(x);
        var (g, g64) = Inputs.Place(Inputs.Normal(gen, y.shape), y.dtype, c.Device);
        var grads = autograd.grad([y], [x, a, b], [g]);

        Tensor w64 = linear.weight!.detach().cpu().to(ScalarType.Float64), bias64 = linear.bias!.detach().cpu().to(ScalarType.Float64);
        Tensor a64 = a.detach().cpu().to(ScalarType.Float64).requires_grad_(), b64 = b.detach().cpu().to(ScalarType.Float64).requires_grad_();
        Tensor y64 = x64.matmul(w64.t()) + bias64 + x64.matmul(a64.t()).matmul(b64.t()) * options.Scaling;
        var refs = autograd.grad([y64], [x64, a64, b64], [g64]);

        string detail = $"adapters {Errors.Name(a.dtype)}, scaling {options.Scaling:G4}";
        r.Close("y", y, y64, Tolerance(y, y64), detail);
        r.Close("dx", grads[0], refs[0], Tolerance(grads[0], refs[0]));
        r.Close("dA", grads[1], refs[1], Tolerance(grads[1], refs[1]));
        r.Close("dB", grads[2], refs[2], Tolerance(grads[2], refs[2]));
    }
}
