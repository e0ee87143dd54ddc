using static TorchSharp.torch;

namespace LongContext.IO;

/// <summary>
/// The safetensors dtype names (as the reference implementation, huggingface/safetensors, defines them) with their
/// width in bits, and the ones this library maps to a TorchSharp <see cref="ScalarType"/>.
/// </summary>
internal static class SafetensorsDtypes
{
    /// <summary>Every dtype name of the format, in the reference's order (increasing alignment), with its bit width.</summary>
    private static readonly (string Name, int Bits)[] Known =
    [
        ("BOOL", 8), ("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6), ("U8", 8), ("I8", 8), ("F8_E5M2", 8), ("F8_E4M3", 8),
        ("F8_E8M0", 8), ("I16", 16), ("U16", 16), ("F16", 16), ("BF16", 16), ("I32", 32), ("U32", 32), ("F32", 32),
        ("C64", 64), ("F64", 64), ("I64", 64), ("U64", 64),
    ];

    /// <summary>The dtypes TorchSharp 0.107 can hold, by name.</summary>
    private static readonly Dictionary<string, ScalarType> Supported = new(StringComparer.Ordinal)
    {
        ["F64"] = ScalarType.Float64, ["F32"] = ScalarType.Float32, ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16, ["I64"] = ScalarType.Int64, ["I32"] = ScalarType.Int32,
        ["I16"] = ScalarType.Int16, ["I8"] = ScalarType.Int8, ["U8"] = ScalarType.Byte, ["BOOL"] = ScalarType.Bool,
    };

    /// <summary>The names of the supported dtypes, for messages.</summary>
    public static string SupportedNames => string.Join(", ", Supported.Keys);

    /// <summary>The names of every dtype of the format, for messages.</summary>
    public static string KnownNames => string.Join(", ", Known.Select(k => k.Name));

    /// <summary>The bit width of a dtype of the format; false for a name the format does not define.</summary>
    public static bool TryGetBits(string name, out int bits)
    {
        foreach (var (n, b) in Known)
        {
            if (n == name)
            {
                bits = b;
                return true;
            }
        }
        bits = 0;
        return false;
    }

    /// <summary>The TorchSharp dtype of a format dtype, or null when TorchSharp cannot hold it.</summary>
    public static ScalarType? ToScalarType(string name) => Supported.TryGetValue(name, out ScalarType t) ? t : null;

    /// <summary>The format name of a TorchSharp dtype.</summary>
    /// <exception cref="NotSupportedException">The dtype has no safetensors name (complex and quantized types).</exception>
    public static string NameOf(ScalarType type, string tensorName)
    {
        foreach (var (name, t) in Supported)
            if (t == type) return name;
        throw new NotSupportedException(
            $"tensor '{tensorName}' has dtype {type}, which this library does not write to safetensors; expected one of {string.Join(", ", Supported.Values)}.");
    }

    /// <summary>The sort rank the reference writer uses (its enum order: larger alignment first when descending).</summary>
    public static int Rank(string name)
    {
        for (int i = 0; i < Known.Length; i++)
            if (Known[i].Name == name) return i;
        throw new ArgumentOutOfRangeException(nameof(name), name, "not a safetensors dtype name.");
    }
}
