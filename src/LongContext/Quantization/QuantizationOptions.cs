using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>
/// How <see cref="ModelQuantizer.Quantize"/> turns a model's Linear layers into <see cref="Linear4Bit"/> (QLoRA defaults),
/// validated as each option is set: a bad value throws from the object initializer, naming the option.
/// </summary>
public sealed record QuantizationOptions
{
    private readonly QuantType _type = QuantType.Nf4;
    private readonly int _blockSize = 64;
    private readonly ScalarType? _computeDtype;
    private readonly IReadOnlyList<string> _exclude = DefaultExclude;

    /// <summary>The default <see cref="Exclude"/>: <c>lm_head</c>, as QLoRA keeps the output head in full precision.</summary>
    public static IReadOnlyList<string> DefaultExclude { get; } = Array.AsReadOnly(new[] { "lm_head" });

    /// <summary>4-bit data type (NF4 by default).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="QuantType"/>.</exception>
    public QuantType Type
    {
        get => _type;
        init => _type = Enum.IsDefined(value)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Type), value, $"{nameof(Type)} must be Nf4 or Fp4; got {value}.");
    }

    /// <summary>Elements per block: a power of two in [32, 4096] (64 by default).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a power of two in range.</exception>
    public int BlockSize { get => _blockSize; init => _blockSize = BlockwiseChecks.BlockSize(value, nameof(BlockSize)); }

    /// <summary>Double-quantize the block scales (true by default, as QLoRA).</summary>
    public bool DoubleQuant { get; init; } = true;

    /// <summary>Compute dtype of the quantized layers (float32, bfloat16 or float16); null keeps each layer's weight dtype.</summary>
    /// <exception cref="ArgumentException">The value is not float32, bfloat16 or float16.</exception>
    public ScalarType? ComputeDtype
    {
        get => _computeDtype;
        init
        {
            if (value is ScalarType dt) BlockwiseChecks.FloatDtype(dt, nameof(ComputeDtype));
            _computeDtype = value;
        }
    }

    /// <summary>
    /// Module names left in full precision. An entry matches a module whose path equals it or ends with
    /// <c>.</c> + it (so <c>lm_head</c> matches <c>lm_head</c> and <c>model.lm_head</c>). Default
    /// <see cref="DefaultExclude"/>, which may match nothing (a model without a head). A list you set must have every
    /// entry match a Linear layer: <see cref="ModelQuantizer.Quantize"/> refuses one that matches none (a misspelt name
    /// would quantize the layer it meant to keep). The list is copied.
    /// </summary>
    /// <exception cref="ArgumentException">The list is null or holds an empty name.</exception>
    public IReadOnlyList<string> Exclude
    {
        get => _exclude;
        init
        {
            if (value is null) throw new ArgumentNullException(nameof(Exclude), $"{nameof(Exclude)} must not be null (use an empty list).");
            foreach (string e in value)
                if (string.IsNullOrWhiteSpace(e))
                    throw new ArgumentException(
                        $"{nameof(Exclude)} entries must be non-empty module names; got [{string.Join(", ", value.Select(v => $"'{v}'"))}].",
                        nameof(Exclude));
            _exclude = value.ToArray();
        }
    }

    internal bool IsExcluded(string path) => Exclude.Any(e => Matches(path, e));

    /// <summary>Whether an exclusion entry names the module at <paramref name="path"/>.</summary>
    internal static bool Matches(string path, string entry) => path == entry || path.EndsWith("." + entry, StringComparison.Ordinal);

    /// <summary>Whether <see cref="Exclude"/> is the default list (its entries need not match anything).</summary>
    internal bool ExcludeIsDefault => _exclude.SequenceEqual(DefaultExclude);
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
