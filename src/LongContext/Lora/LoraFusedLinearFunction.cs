using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// y = x·Wᵀ + bias + s·(x·Aᵀ)·Bᵀ with fewer passes over the output than peft's three separate linears and two adds:
/// forward adds the rank-r product into the base GEMM's output in place (one output-sized buffer); backward adds dh·A
/// into dy·W in place instead of materialising two input gradients.
/// </summary>
/// <remarks>
/// Inputs (in order): x (*, in), W (out, in), A (r, in), B (out, r), bias (out) or null, scaling (double),
/// and a weight reader (Func&lt;Tensor&gt;) or null. W is read again in backward through the reader when given (so a
/// 4-bit base is dequantized twice rather than held), otherwise kept by reference. Only for dropout-free branches.
/// </remarks>
internal sealed class LoraFusedLinearFunction : autograd.SingleTensorFunction<LoraFusedLinearFunction>
{
    public override string Name => "LoraFusedLinear";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var a = (Tensor)vars[2];
        var b = (Tensor)vars[3];
        var bias = vars[4] as Tensor;
        double s = (double)vars[5];
        var reader = vars[6] as Func<Tensor>;
        long outF = w.size(0), inF = w.size(1);

        var x2 = x.reshape(-1, inF);
        // Two GEMMs over x (the base's and the rank-r one) rather than one over a stacked [W; A]: stacking copies W on
        // every call, which cost more than reading x twice (measured: BENCHMARKS.md, lora).
        var y = bias is null ? x2.matmul(w.t()) : addmm(bias, x2, w.t(), 1, 1);   // (N, out)
        var h = x2.matmul(a.t());                                           // x·Aᵀ, (N, r); saved after forward returns: not disposed here
        using var bs = b.mul(s);                                            // scale the small matrix (alpha is float-only)
        y.addmm_(h, bs.t(), 1, 1);                                          // + s·h·Bᵀ in place

        ctx.save_for_backward([x2, h]);
        // The layer's own parameter objects, kept by reference: no new native handle per call (a detached view per
        // call would outlive the step when backward never runs). Boxed so TorchSharp keeps them as plain data (no
        // version tracking; W, A and B do not change between forward and backward). Backward runs without grad mode.
        ctx.save_data("w", new StrongBox<Tensor?>(reader is null ? w : null));
        ctx.save_data("reader", reader!);
        ctx.save_data("a", new StrongBox<Tensor>(a));
        ctx.save_data("b", new StrongBox<Tensor>(b));
        ctx.save_data("s", s);
        ctx.save_data("wGrad", w.requires_grad);
        ctx.save_data("biasGrad", bias?.requires_grad ?? false);
        long[] xShape = x.shape;                                            // read once: each shape read leaves TorchSharp native memory to the finalizer
        ctx.save_data("xShape", xShape);
        long[] outShape = xShape.ToArray();
        outShape[^1] = outF;
        return y.view(outShape);
    }

    public override List<Tensor?> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor x2 = saved[0], h = saved[1];
        var reader = ctx.get_data("reader") as Func<Tensor>;
        var w = reader is null ? ((StrongBox<Tensor?>)ctx.get_data("w")).Value! : reader();
        var a = ((StrongBox<Tensor>)ctx.get_data("a")).Value!;
        var b = ((StrongBox<Tensor>)ctx.get_data("b")).Value!;
        double s = (double)ctx.get_data("s");
        var xShape = (long[])ctx.get_data("xShape");
        long outF = w.size(0);

        var dy = gradOutput.reshape(-1, outF);
        using var bs = b.mul(s);
        using var dh = dy.matmul(bs);                                        // (N, r)
        var dB = dy.t().matmul(h.mul(s));                                    // (out, r)
        var dA = dh.t().matmul(x2);                                          // (r, in)
        var dx = dy.matmul(w).addmm_(dh, a).view(xShape);                   // (N, in): dy·W + dh·A in one buffer
        Tensor? dW = (bool)ctx.get_data("wGrad") ? dy.t().matmul(x2) : null;
        Tensor? dBias = (bool)ctx.get_data("biasGrad") ? dy.sum(0) : null;
        return [dx, dW, dA, dB, dBias, null, null];
    }
}
