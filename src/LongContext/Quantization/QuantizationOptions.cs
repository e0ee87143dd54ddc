using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>How <see cref="ModelQuantizer.Quantize"/> turns a model's Linear layers into <see cref="Linear4Bit"/> (QLoRA defaults).</summary>
public sealed record QuantizationOptions
{
    /// <summary>4-bit data type (NF4 by default).</summary>
    public QuantType Type { get; init; } = QuantType.Nf4;

    /// <summary>Elements per block: a power of two in [32, 4096] (64 by default).</summary>
    public int BlockSize { get; init; } = 64;

    /// <summary>Double-quantize the block scales (true by default, as QLoRA).</summary>
    public bool DoubleQuant { get; init; } = true;

    /// <summary>Compute dtype of the quantized layers; null keeps each layer's weight dtype.</summary>
    public ScalarType? ComputeDtype { get; init; }

    /// <summary>
    /// Module names left in full precision. An entry matches a module whose path equals it or ends with
    /// <c>.</c> + it (so <c>lm_head</c> matches <c>lm_head</c> and <c>model.lm_head</c>). Default: <c>lm_head</c>.
    /// </summary>
    public IReadOnlyList<string> Exclude { get; init; } = new[] { "lm_head" };

    /// <summary>Checks every option, naming the bad one.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public QuantizationOptions Validate()
    {
        BlockwiseChecks.BlockSize(BlockSize, nameof(BlockSize));
        if (!Enum.IsDefined(Type))
            throw new ArgumentOutOfRangeException(nameof(Type), Type, $"Type must be Nf4 or Fp4; got {Type}.");
        if (ComputeDtype is ScalarType dt) BlockwiseChecks.FloatDtype(dt, nameof(ComputeDtype));
        if (Exclude is null) throw new ArgumentNullException(nameof(Exclude), "Exclude must not be null (use an empty list).");
        foreach (string e in Exclude)
            if (string.IsNullOrWhiteSpace(e))
                throw new ArgumentException($"Exclude entries must be non-empty module names; got '{e}'.", nameof(Exclude));
        return this;
    }

    internal bool IsExcluded(string path) =>
        Exclude.Any(e => path == e || path.EndsWith("." + e, StringComparison.Ordinal));
}

/// <summary>What <see cref="ModelQuantizer.Quantize"/> did and the memory it saved.</summary>
/// <param name="QuantizedModules">Paths of the Linear layers replaced by <see cref="Linear4Bit"/>.</param>
/// <param name="ExcludedModules">Paths of Linear layers left in full precision by the exclusion list.</param>
/// <param name="QuantizedParameters">Weight elements now stored in 4 bits.</param>
/// <param name="BytesBefore">Bytes of all parameters, buffers and 4-bit states before.</param>
/// <param name="BytesAfter">The same after quantization.</param>
public sealed record QuantizationReport(
    IReadOnlyList<string> QuantizedModules,
    IReadOnlyList<string> ExcludedModules,
    long QuantizedParameters,
    long BytesBefore,
    long BytesAfter)
{
    /// <summary>BytesBefore / BytesAfter.</summary>
    public double CompressionRatio => BytesAfter == 0 ? 0 : (double)BytesBefore / BytesAfter;
}
