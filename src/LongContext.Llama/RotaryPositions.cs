using LongContext.Rope;
using static TorchSharp.torch;

namespace LongContext.Llama;

/// <summary>
/// The rotary cos/sin of one forward's positions, computed once by <see cref="LlamaModel"/> from the position ids and
/// shared by every layer (HF's <c>position_embeddings</c>), already cast to the model's dtype in the form the
/// rotation reads. Layers rotate their queries and new keys with <see cref="Rotate"/>; cached keys were rotated when
/// they were computed, so query and key positions are independent.
/// </summary>
/// <remarks>
/// Values equal <see cref="RotaryEmbedding.Apply(Tensor, Tensor)"/> at the same positions bit for bit (the same
/// float32 tables, the same casts and kernels). A q or k of another dtype than the tables' (e.g. a 4-bit layer
/// computing in float32 under bfloat16 embeddings) is rotated with tables cast from the float32 source, as HF casts
/// cos/sin to q's dtype. Holds five small tensors: dispose it, or create it inside a dispose scope.
/// </remarks>
public sealed class RotaryPositions : IDisposable
{
    private RotaryPositions(Tensor cos32, Tensor sin32, Tensor cos, Tensor sinHalf, Tensor signedSin, RotaryLayout layout, int headDim)
    {
        Cos32 = cos32;
        Sin32 = sin32;
        Cos = cos;
        SinHalf = sinHalf;
        SignedSin = signedSin;
        Layout = layout;
        HeadDim = headDim;
        RotaryDim = (int)cos32.size(2);
    }

    /// <summary>cos as <see cref="RotaryEmbedding.forward"/> returns it: float32 (B|1, N, rotaryDim), attention scaling included.</summary>
    public Tensor Cos32 { get; }

    /// <summary>sin as <see cref="RotaryEmbedding.forward"/> returns it: float32 (B|1, N, rotaryDim).</summary>
    public Tensor Sin32 { get; }

    /// <summary>Attention head dimension.</summary>
    public int HeadDim { get; }

    /// <summary>cos, (B|1, 1, N, headDim) in the model's dtype, 1 on the unrotated dims (partial rotary).</summary>
    public Tensor Cos { get; }

    /// <summary>sin, one value per rotated pair, (B|1, 1, N, rotaryDim/2) in the model's dtype.</summary>
    public Tensor SinHalf { get; }

    /// <summary>sin with the rotation's sign folded in, (B|1, 1, N, headDim) (the differentiable kernel's table).</summary>
    public Tensor SignedSin { get; }

    /// <summary>Pair layout of the head dimension.</summary>
    public RotaryLayout Layout { get; }

    /// <summary>Number of leading head dimensions that rotate.</summary>
    public int RotaryDim { get; }

    /// <summary>Number of positions N.</summary>
    public long Length => Cos.size(2);

    /// <summary>The five tables in a fixed order (context tensors of an activation checkpoint).</summary>
    internal IReadOnlyList<Tensor> Tensors => [Cos32, Sin32, Cos, SinHalf, SignedSin];

    /// <summary>
    /// Looks the positions up in <paramref name="rotary"/> (which applies its dynamic / LongRoPE update for the
    /// largest position, as HF's does) and casts to <paramref name="dtype"/>.
    /// </summary>
    /// <param name="rotary">The model's rotary embedding.</param>
    /// <param name="positionIds">int64 (B, N) or (N) positions, non-negative.</param>
    /// <param name="dtype">Dtype of q and k (the model's dtype).</param>
    public static RotaryPositions Compute(RotaryEmbedding rotary, Tensor positionIds, ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(rotary);
        using var scope = NewDisposeScope();
        (Tensor cos32, Tensor sin32) = rotary.forward(positionIds);          // float32 (B, N, rotaryDim)
        var (cos, sinHalf, signed) = Tables(cos32, sin32, rotary.Options.HeadDim, rotary.Options.Layout, dtype);
        return new RotaryPositions(cos32.MoveToOuterDisposeScope(), sin32.MoveToOuterDisposeScope(), cos.MoveToOuterDisposeScope(),
            sinHalf.MoveToOuterDisposeScope(), signed.MoveToOuterDisposeScope(), rotary.Options.Layout, rotary.Options.HeadDim);
    }

    private static (Tensor Cos, Tensor SinHalf, Tensor SignedSin) Tables(Tensor cos32, Tensor sin32, int headDim, RotaryLayout layout, ScalarType dtype)
    {
        long b = cos32.size(0), n = cos32.size(1), r = cos32.size(2);
        Tensor flatCos = cos32.reshape(b * n, r), flatSin = sin32.reshape(b * n, r);
        (Tensor cos, Tensor sinHalf) = RotaryKernels.ApplyTables(flatCos, flatSin, headDim, layout, dtype);
        Tensor signed = RotaryKernels.SignedSinTable(flatSin, headDim, layout, dtype);
        return (cos.view(b, 1, n, headDim), sinHalf.view(b, 1, n, r / 2), signed.view(b, 1, n, headDim));
    }

    /// <summary>Rebuilds the tables from <see cref="Tensors"/> (inside an activation checkpoint's recompute).</summary>
    internal static RotaryPositions FromTensors(IReadOnlyList<Tensor> tensors, int start, RotaryLayout layout, int headDim)
        => new(tensors[start], tensors[start + 1], tensors[start + 2], tensors[start + 3], tensors[start + 4], layout, headDim);

    /// <summary>Positions [start, start + length) of these (views, for a chunk of the sequence).</summary>
    /// <param name="start">First position index (not position id) to keep.</param>
    /// <param name="length">Number of positions.</param>
    public RotaryPositions Narrow(long start, long length)
        => new(Cos32.narrow(1, start, length), Sin32.narrow(1, start, length), Cos.narrow(2, start, length),
            SinHalf.narrow(2, start, length), SignedSin.narrow(2, start, length), Layout, HeadDim);

    /// <summary>
    /// Rotates q or k (B, H, N, headDim) in its dtype; differentiable (the cheaper-backward kernel is used when the
    /// input records gradients).
    /// </summary>
    /// <param name="x">(B, H, N, headDim) with N = <see cref="Length"/>, B matching or the tables' B = 1.</param>
    /// <returns>The rotated copy.</returns>
    public Tensor Rotate(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4 || x.size(2) != Length || x.size(3) != Cos.size(3) || (Cos.size(0) != 1 && Cos.size(0) != x.size(0)))
            throw new ArgumentException(
                $"{nameof(x)} must be (B, H, {Length}, {Cos.size(3)}) for rotary tables of shape ({string.Join(", ", Cos.shape)}); got ({string.Join(", ", x.shape)}).", nameof(x));
        if (!x.is_floating_point())
            throw new ArgumentException($"{nameof(x)} must be a floating-point tensor; got {x.dtype}.", nameof(x));
        bool differentiable = x.requires_grad && is_grad_enabled();
        if (x.dtype == Cos.dtype)
            return differentiable
                ? RotaryKernels.RotateDifferentiable(x, Cos, SignedSin, Layout, RotaryDim)
                : RotaryKernels.Rotate(x, Cos, SinHalf, Layout, RotaryDim);
        using var scope = NewDisposeScope();
        var (cos, sinHalf, signed) = Tables(Cos32, Sin32, HeadDim, Layout, x.dtype);
        return (differentiable
            ? RotaryKernels.RotateDifferentiable(x, cos, signed, Layout, RotaryDim)
            : RotaryKernels.Rotate(x, cos, sinHalf, Layout, RotaryDim)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Cos32.Dispose();
        Sin32.Dispose();
        Cos.Dispose();
        SinHalf.Dispose();
        SignedSin.Dispose();
    }
}
