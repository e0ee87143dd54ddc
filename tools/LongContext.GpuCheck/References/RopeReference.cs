using static TorchSharp.torch;

namespace LongContext.GpuCheck.References;

/// <summary>HF's rotation in float64, written out: <c>x * cos + rotate_half(x) * sin</c> with <c>rotate_half(x) = cat(-x2, x1)</c>.</summary>
internal static class RopeReference
{
    /// <summary>x (B, H, N, D) float64, cos/sin (N, D) float64 (already scaled by the attention factor).</summary>
    public static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        Tensor rotated = cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        return x * cos + rotated * sin;
    }
}
