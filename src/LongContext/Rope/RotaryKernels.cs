using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>
/// The rotation itself, as pure functions of tensors. Two formulations, both fewer passes over x than HF's recipe
/// <c>x * cos + rotate_half(x) * sin</c> (neg, cat, two muls, add: about 10 tensor-sized reads and writes; the
/// benchmarks' baseline, <c>benchmarks/.../Baselines/EagerRope.cs</c>):
/// <list type="bullet">
/// <item><see cref="Rotate"/> (no graph recorded): <c>out = x * cos</c>, then two in-place <c>addcmul_</c> on the
/// halves of out with the pair partner and the half-width sin, the rotation's sign in the addcmul's value (5).</item>
/// <item><see cref="RotateDifferentiable"/> (autograd records): <c>out = x * cos</c>, then one in-place
/// <c>out.addcmul_(partner(x), signedSin)</c> with the sign folded into a precomputed sin table and the partner a
/// single roll/flip (7). Its backward is three simple passes, where in-place updates of views (the first form) make
/// autograd clone and zero-fill full gradients.</item>
/// </list>
/// </summary>
internal static class RotaryKernels
{
    /// <summary>
    /// cos and sin tables for positions 0..length-1: float32 (length, rotaryDim) in the layout's order
    /// (<c>cat(f, f)</c> or <c>repeat_interleave(f, 2)</c>), angles <c>(float)p * inv_freq</c> in float32 as HF
    /// computes them, then multiplied by <paramref name="attentionScaling"/>.
    /// </summary>
    public static (Tensor Cos, Tensor Sin) Tables(Tensor inverseFrequencies, long length, double attentionScaling, RotaryLayout layout, Device device)
    {
        using var scope = NewDisposeScope();
        Tensor inv = inverseFrequencies.to(ScalarType.Float32, device);
        Tensor angles = arange(length, dtype: ScalarType.Int64, device: device).to(ScalarType.Float32).unsqueeze(1).mul(inv.unsqueeze(0));
        Tensor emb = layout == RotaryLayout.HalfSplit ? cat([angles, angles], 1) : angles.repeat_interleave(2, 1);
        Tensor cos = emb.cos(), sin = emb.sin();
        if (attentionScaling != 1.0)
        {
            cos = cos.mul(attentionScaling);
            sin = sin.mul(attentionScaling);
        }
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// From float32 layout tables (length, rotaryDim): the tables <see cref="Rotate"/> reads, in <paramref name="dtype"/>:
    /// cos (length, headDim) with 1 on the unrotated dims, and sin (length, rotaryDim/2), one value per pair.
    /// </summary>
    public static (Tensor Cos, Tensor SinHalf) ApplyTables(Tensor cos, Tensor sin, int headDim, RotaryLayout layout, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        long length = cos.size(0), rotaryDim = cos.size(1), half = rotaryDim / 2;
        Tensor cosApply = rotaryDim == headDim ? cos : cat([cos, ones(length, headDim - rotaryDim, dtype: ScalarType.Float32, device: cos.device)], 1);
        Tensor sinHalf = layout == RotaryLayout.HalfSplit ? sin.narrow(1, 0, half) : sin.view(length, half, 2).select(2, 0);
        return (cosApply.to(dtype).contiguous().MoveToOuterDisposeScope(), sinHalf.to(dtype).contiguous().MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Rotates x (..., N, headDim): <c>out = x * cos</c>, then for each pair (a, b): <c>out_a -= b * s</c>,
    /// <c>out_b += a * s</c>. cos (..., N, headDim) and sinHalf (..., N, rotaryDim/2) broadcast against x and share its
    /// dtype. Differentiable in x.
    /// </summary>
    public static Tensor Rotate(Tensor x, Tensor cos, Tensor sinHalf, RotaryLayout layout, int rotaryDim)
    {
        int half = rotaryDim / 2;
        Tensor output = x.mul(cos);
        if (layout == RotaryLayout.HalfSplit)
        {
            using Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
            using Tensor o1 = output.narrow(-1, 0, half), o2 = output.narrow(-1, half, half);
            o1.addcmul_(x2, sinHalf, -1);
            o2.addcmul_(x1, sinHalf, 1);
        }
        else
        {
            long last = x.dim() - 1;
            using Tensor xr = x.narrow(last, 0, rotaryDim).unflatten(last, half, 2), orr = output.narrow(last, 0, rotaryDim).unflatten(last, half, 2);
            using Tensor xe = xr.select(-1, 0), xo = xr.select(-1, 1), oe = orr.select(-1, 0), oo = orr.select(-1, 1);
            oe.addcmul_(xo, sinHalf, -1);
            oo.addcmul_(xe, sinHalf, 1);
        }
        return output;
    }

    /// <summary>
    /// Rotates x (..., N, headDim) with the sign-folded sin: <c>out = x * cos + partner(x) * signedSin</c>, where
    /// partner swaps the two members of each pair and signedSin (..., N, headDim) holds -s on the first member, +s on
    /// the second and 0 on unrotated dims. Same values as <see cref="Rotate"/>; cheaper backward.
    /// </summary>
    public static Tensor RotateDifferentiable(Tensor x, Tensor cos, Tensor signedSin, RotaryLayout layout, int rotaryDim)
    {
        using var scope = NewDisposeScope();
        long last = x.dim() - 1, headDim = x.size((int)last), half = rotaryDim / 2;
        Tensor partner;
        if (layout == RotaryLayout.HalfSplit)
        {
            partner = rotaryDim == headDim
                ? x.roll(half, last)
                : cat([x.narrow(last, half, half), x.narrow(last, 0, half), x.narrow(last, rotaryDim, headDim - rotaryDim)], last);
        }
        else
        {
            Tensor swapped = x.narrow(last, 0, rotaryDim).unflatten(last, half, 2).flip(last + 1).flatten(last, last + 1);
            partner = rotaryDim == headDim ? swapped : cat([swapped, x.narrow(last, rotaryDim, headDim - rotaryDim)], last);
        }
        Tensor output = x.mul(cos);
        output.addcmul_(partner, signedSin, 1);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The sign-folded sin table for <see cref="RotateDifferentiable"/> from the float32 layout table (length,
    /// rotaryDim): (length, headDim) in <paramref name="dtype"/>, -s / +s on each pair's first / second member, 0 past rotaryDim.
    /// </summary>
    public static Tensor SignedSinTable(Tensor sin, int headDim, RotaryLayout layout, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        long length = sin.size(0), rotaryDim = sin.size(1), half = rotaryDim / 2;
        Tensor signs = layout == RotaryLayout.HalfSplit
            ? cat([full(half, -1f, device: sin.device), ones(half, device: sin.device)], 0)
            : tensor(new[] { -1f, 1f }, device: sin.device).repeat(half);
        Tensor signed = sin.mul(signs);
        if (rotaryDim != headDim) signed = cat([signed, zeros(length, headDim - rotaryDim, device: sin.device)], 1);
        return signed.to(dtype).contiguous().MoveToOuterDisposeScope();
    }
}
