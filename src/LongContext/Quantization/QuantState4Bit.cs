using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>
/// Everything needed to dequantize a blockwise 4-bit tensor, laid out as bitsandbytes' <c>QuantState</c>:
/// packed codes, one scale (absmax) per block, either plain or double-quantized, and the original shape and dtype.
/// Owns its tensors; dispose it (or the module holding it) to free them.
/// </summary>
public sealed class QuantState4Bit : IDisposable
{
    private Tensor? _pairTable;

    /// <summary>Creates a state from its parts (validated). The state keeps its own references to the tensors' storage,
    /// outside any dispose scope; the caller may dispose the arguments.</summary>
    /// <param name="packed">uint8 (ceil(n/2)): two codes a byte, the first element in the high nibble.</param>
    /// <param name="absmax">float32 (ceil(n/blockSize)) when <paramref name="nested"/> is null; otherwise the
    /// uint8 8-bit codes of the block scales (same length).</param>
    /// <param name="shape">Shape of the original tensor.</param>
    /// <param name="blockSize">Elements per block: a power of two in [32, 4096].</param>
    /// <param name="quantType">NF4 or FP4.</param>
    /// <param name="originalDtype">The dtype of the tensor that was quantized (float32, bfloat16 or float16).</param>
    /// <param name="nested">The double-quantization state of the block scales, or null.</param>
    public QuantState4Bit(Tensor packed, Tensor absmax, long[] shape, int blockSize, QuantType quantType,
                          ScalarType originalDtype, NestedAbsmaxState? nested = null)
    {
        ArgumentNullException.ThrowIfNull(packed);
        ArgumentNullException.ThrowIfNull(absmax);
        ArgumentNullException.ThrowIfNull(shape);
        BlockwiseChecks.BlockSize(blockSize);
        BlockwiseChecks.FloatDtype(originalDtype, nameof(originalDtype));
        if (!Enum.IsDefined(quantType))
            throw new ArgumentOutOfRangeException(nameof(quantType), quantType, $"quantType must be Nf4 or Fp4; got {quantType}.");
        long n = shape.Aggregate(1L, (a, b) => a * b);
        if (shape.Any(d => d < 0) || n <= 0)
            throw new ArgumentException($"shape must have positive dimensions; got [{string.Join(", ", shape)}].", nameof(shape));
        long blocks = (n + blockSize - 1) / blockSize;
        if (packed.dtype != ScalarType.Byte || packed.numel() != (n + 1) / 2)
            throw new ArgumentException(
                $"packed must be uint8 with {(n + 1) / 2} elements for shape [{string.Join(", ", shape)}]; got {packed.dtype} with {packed.numel()}.",
                nameof(packed));
        ScalarType expectedAbsmax = nested is null ? ScalarType.Float32 : ScalarType.Byte;
        if (absmax.dtype != expectedAbsmax || absmax.numel() != blocks)
            throw new ArgumentException(
                $"absmax must be {expectedAbsmax} with {blocks} elements (one a block of {blockSize}); got {absmax.dtype} with {absmax.numel()}.",
                nameof(absmax));
        Packed = packed.reshape(-1).DetachFromDisposeScope();
        Absmax = absmax.reshape(-1).DetachFromDisposeScope();
        Shape = (long[])shape.Clone();
        BlockSize = blockSize;
        QuantType = quantType;
        OriginalDtype = originalDtype;
        Nested = nested;
    }

    /// <summary>Packed codes, uint8 (ceil(n/2)); element 2i in the high nibble of byte i, 2i+1 in the low nibble.</summary>
    public Tensor Packed { get; private set; }

    /// <summary>Per-block scales: float32 (blocks) when not nested; uint8 8-bit codes (blocks) when <see cref="Nested"/> is set.</summary>
    public Tensor Absmax { get; private set; }

    /// <summary>Double-quantization state of the block scales, or null when the scales are stored in float32.</summary>
    public NestedAbsmaxState? Nested { get; private set; }

    /// <summary>Shape of the original tensor.</summary>
    public long[] Shape { get; }

    /// <summary>Number of elements of the original tensor.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Number of blocks (the tail block is padded with zeros and has its own scale).</summary>
    public long BlockCount => (ElementCount + BlockSize - 1) / BlockSize;

    /// <summary>Elements per block.</summary>
    public int BlockSize { get; }

    /// <summary>The 4-bit data type.</summary>
    public QuantType QuantType { get; }

    /// <summary>The dtype of the tensor that was quantized (bitsandbytes' <c>dtype</c>; the default compute dtype).</summary>
    public ScalarType OriginalDtype { get; }

    /// <summary>The device the state's tensors live on.</summary>
    public Device Device => Packed.device;

    /// <summary>Bytes held by the stored tensors (codes, scales, nested state; codebooks excluded as they are shared constants).</summary>
    public long StoredBytes => Packed.numel() * Packed.ElementSize + Absmax.numel() * Absmax.ElementSize
                               + (Nested is null ? 0 : Nested.Absmax.numel() * Nested.Absmax.ElementSize + 4);

    /// <summary>Stored bytes per element of the original tensor (0.5 for the codes plus the scale overhead).</summary>
    public double BytesPerParameter => (double)StoredBytes / ElementCount;

    /// <summary>The block scales in float32 (blocks), undoing double quantization when present.</summary>
    public Tensor DequantizedAbsmax()
    {
        if (Nested is null) return Absmax.alias();
        return Blockwise8Bit.Dequantize(Absmax, Nested);
    }

    /// <summary>Moves the state's tensors to a device (in place); the dtypes never change.</summary>
    /// <param name="device">Target device.</param>
    public void MoveTo(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (Packed.device == device) return;
        Packed = Swap(Packed, Packed.to(device));
        Absmax = Swap(Absmax, Absmax.to(device));
        Nested?.MoveTo(device);
        _pairTable?.Dispose();
        _pairTable = null;
    }

    /// <summary>A deep copy on the same device.</summary>
    public QuantState4Bit Clone() =>
        new(Packed.clone(), Absmax.clone(), Shape, BlockSize, QuantType, OriginalDtype, Nested?.Clone());

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        Packed.Dispose();
        Absmax.Dispose();
        Nested?.Dispose();
        _pairTable?.Dispose();
    }

    // (256, 2) float32 table on the state's device: byte b -> (code[b >> 4], code[b & 15]).
    internal Tensor PairTable()
    {
        if (_pairTable is null || _pairTable.IsInvalid)
        {
            float[] code = Codebooks.Shared(QuantType);
            var pairs = new float[512];
            for (int b = 0; b < 256; b++) { pairs[2 * b] = code[b >> 4]; pairs[2 * b + 1] = code[b & 15]; }
            using var cpu = tensor(pairs, new long[] { 256, 2 });
            _pairTable = cpu.to(Packed.device).DetachFromDisposeScope();
        }
        return _pairTable;
    }

    private static Tensor Swap(Tensor old, Tensor moved)
    {
        moved.DetachFromDisposeScope();
        if (!ReferenceEquals(old, moved)) old.Dispose();
        return moved;
    }
}

/// <summary>
/// bitsandbytes' nested state (<c>state2</c> plus <c>offset</c>): the per-block scales minus their mean, quantized
/// blockwise to 8 bits with the dynamic map. absmax_i = map[code_i] * NestedAbsmax[i / BlockSize] + Offset.
/// </summary>
public sealed class NestedAbsmaxState : IDisposable
{
    /// <summary>Creates a nested state (validated); keeps its own reference to the tensor, outside any dispose scope.</summary>
    /// <param name="absmax">float32 (ceil(blocks / blockSize)): the scale of each block of scales.</param>
    /// <param name="blockSize">Scales per nested block (bitsandbytes uses 256).</param>
    /// <param name="offset">The mean that was subtracted from the scales.</param>
    /// <param name="map">The 8-bit code values (256, ascending); defaults to <see cref="Codebooks.DynamicMap8Bit"/>.</param>
    public NestedAbsmaxState(Tensor absmax, int blockSize, float offset, float[]? map = null)
    {
        ArgumentNullException.ThrowIfNull(absmax);
        Guard.Positive(blockSize);
        if (absmax.dtype != ScalarType.Float32)
            throw new ArgumentException($"absmax must be float32; got {absmax.dtype}.", nameof(absmax));
        if (!float.IsFinite(offset))
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"offset must be finite; got {offset}.");
        map ??= Codebooks.SharedDynamic;
        if (map.Length != 256)
            throw new ArgumentException($"map must have 256 entries; got {map.Length}.", nameof(map));
        Absmax = absmax.reshape(-1).DetachFromDisposeScope();
        BlockSize = blockSize;
        Offset = offset;
        Map = (float[])map.Clone();
    }

    /// <summary>float32 scales of the blocks of 8-bit codes.</summary>
    public Tensor Absmax { get; private set; }

    /// <summary>Scales per nested block.</summary>
    public int BlockSize { get; }

    /// <summary>The mean of the original scales, added back after dequantization.</summary>
    public float Offset { get; }

    /// <summary>The 256 code values of the 8-bit map (bitsandbytes' <c>nested_quant_map</c>).</summary>
    public float[] Map { get; }

    internal void MoveTo(Device device)
    {
        var moved = Absmax.to(device).DetachFromDisposeScope();
        if (!ReferenceEquals(moved, Absmax)) Absmax.Dispose();
        Absmax = moved;
    }

    /// <summary>A deep copy.</summary>
    public NestedAbsmaxState Clone() => new(Absmax.clone(), BlockSize, Offset, Map);

    /// <summary>Frees the tensor.</summary>
    public void Dispose() => Absmax.Dispose();
}
