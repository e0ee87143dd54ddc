using static TorchSharp.torch;

namespace LongContext.IO;

/// <summary>
/// PyTorch's names of its dtypes (<c>str(torch.float32)</c> without the <c>torch.</c> prefix: "float32",
/// "bfloat16", ...), as the files of the Python ecosystem write them (an HF <c>config.json</c>'s <c>torch_dtype</c>,
/// a bitsandbytes quant state's <c>dtype</c>), for every TorchSharp <see cref="ScalarType"/>. Only the canonical
/// names: not the aliases (<c>torch.float</c>, <c>torch.half</c>, ...) and not the safetensors names (F32, BF16).
/// Callers that accept only some dtypes check their own set.
/// </summary>
public static class TorchDtypeNames
{
    private static readonly (ScalarType Type, string Name)[] Names =
    [
        (ScalarType.Float32, "float32"), (ScalarType.Float16, "float16"), (ScalarType.BFloat16, "bfloat16"),
        (ScalarType.Float64, "float64"), (ScalarType.Byte, "uint8"), (ScalarType.Int8, "int8"),
        (ScalarType.Int16, "int16"), (ScalarType.Int32, "int32"), (ScalarType.Int64, "int64"),
        (ScalarType.Bool, "bool"), (ScalarType.ComplexFloat32, "complex64"), (ScalarType.ComplexFloat64, "complex128"),
        (ScalarType.QInt8, "qint8"), (ScalarType.QUInt8, "quint8"), (ScalarType.QInt32, "qint32"),
    ];

    /// <summary>PyTorch's name of <paramref name="dtype"/>, e.g. "bfloat16" for <see cref="ScalarType.BFloat16"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is not a dtype TorchSharp defines.</exception>
    public static string Name(ScalarType dtype)
    {
        foreach (var (type, name) in Names)
            if (type == dtype) return name;
        throw new ArgumentOutOfRangeException(nameof(dtype), dtype, $"{(int)dtype} is not a TorchSharp dtype.");
    }

    /// <summary>
    /// The dtype PyTorch calls <paramref name="name"/> (exact, case-sensitive, as PyTorch writes it); false, with
    /// <paramref name="dtype"/> left at its default, for any other string.
    /// </summary>
    public static bool TryParse(string? name, out ScalarType dtype)
    {
        foreach (var (type, n) in Names)
        {
            if (string.Equals(n, name, StringComparison.Ordinal))
            {
                dtype = type;
                return true;
            }
        }
        dtype = default;
        return false;
    }
}
