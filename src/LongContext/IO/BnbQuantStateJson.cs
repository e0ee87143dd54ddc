using System.Text.Json;
using System.Text.Json.Serialization;

namespace LongContext.IO;

/// <summary>
/// The non-tensor part of bitsandbytes' <c>QuantState.as_dict(packed=True)</c>, stored as UTF-8 JSON bytes in the uint8
/// tensor <c>&lt;weight&gt;.quant_state.bitsandbytes__&lt;nf4|fp4&gt;</c>.
/// </summary>
public sealed record BnbQuantStateJson
{
    /// <summary><c>nf4</c> or <c>fp4</c>.</summary>
    [JsonPropertyName("quant_type")] public string QuantType { get; init; } = "";

    /// <summary>Elements per block.</summary>
    [JsonPropertyName("blocksize")] public int BlockSize { get; init; }

    /// <summary>Original dtype name without <c>torch.</c> (<c>float32</c>, <c>bfloat16</c>, <c>float16</c>).</summary>
    [JsonPropertyName("dtype")] public string Dtype { get; init; } = "";

    /// <summary>Original tensor shape.</summary>
    [JsonPropertyName("shape")] public long[] Shape { get; init; } = Array.Empty<long>();

    /// <summary>Nested block size (double quantization only).</summary>
    [JsonPropertyName("nested_blocksize")] [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? NestedBlockSize { get; init; }

    /// <summary>Dtype of the nested scales' source (always <c>float32</c>; double quantization only).</summary>
    [JsonPropertyName("nested_dtype")] [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? NestedDtype { get; init; }

    /// <summary>The mean subtracted from the scales (double quantization only).</summary>
    [JsonPropertyName("nested_offset")] [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? NestedOffset { get; init; }

    /// <summary>Keys bitsandbytes may write that this record does not model; any present is an error.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Unknown { get; init; }
}
