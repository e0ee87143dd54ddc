using System.Text;
using System.Text.Json;
using LongContext.Quantization;
using static TorchSharp.torch;

namespace LongContext.IO;

/// <summary>
/// bitsandbytes' <c>Linear4bit</c> state-dict layout. For a weight key <c>w</c> (e.g. <c>model.layers.0.mlp.up_proj.weight</c>):
/// <c>w</c> uint8 (ceil(n/2), 1) packed codes; <c>w.absmax</c> float32 scales, or uint8 8-bit codes when nested;
/// <c>w.quant_map</c> float32 (16) codebook; when nested <c>w.nested_absmax</c> float32 and <c>w.nested_quant_map</c>
/// float32 (256); and <c>w.quant_state.bitsandbytes__nf4</c> (or <c>__fp4</c>): uint8 bytes of a JSON object
/// (<see cref="BnbQuantStateJson"/>). Read and written as <c>QuantState.as_dict(packed=True)</c> / <c>from_dict</c>.
/// </summary>
public static class Bnb4BitStateDict
{
    private const string QuantStatePrefix = "quant_state.bitsandbytes__";
    private static readonly string[] ValidSuffixes =
        { "absmax", "quant_map", "nested_absmax", "nested_quant_map", QuantStatePrefix + "nf4", QuantStatePrefix + "fp4" };

    /// <summary>The entries of one quantized weight, keyed relative to <paramref name="weightKey"/>.</summary>
    /// <param name="state">The quantized weight.</param>
    /// <param name="weightKey">The weight's key (default <c>weight</c>).</param>
    /// <returns>New tensors on the state's device (the packed codes and scales are views of the state's storage).</returns>
    public static Dictionary<string, Tensor> Write(QuantState4Bit state, string weightKey = "weight")
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentException.ThrowIfNullOrEmpty(weightKey);
        string qt = QuantTypeName(state.QuantType);
        var json = new BnbQuantStateJson
        {
            QuantType = qt,
            BlockSize = state.BlockSize,
            Dtype = DtypeName(state.OriginalDtype),
            Shape = state.Shape,
            NestedBlockSize = state.Nested?.BlockSize,
            NestedDtype = state.Nested is null ? null : TorchDtypeNames.Name(ScalarType.Float32),
            NestedOffset = state.Nested is null ? null : (double)state.Nested.Offset,
        };
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(json);
        Device device = state.Device;
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            [weightKey] = state.Packed.view(-1, 1),
            [$"{weightKey}.absmax"] = state.Absmax.alias(),
            [$"{weightKey}.quant_map"] = tensor(Codebooks.For(state.QuantType)).to(device),
            [$"{weightKey}.{QuantStatePrefix}{qt}"] = tensor(bytes).to(device),
        };
        if (state.Nested is not null)
        {
            result[$"{weightKey}.nested_absmax"] = state.Nested.Absmax.alias();
            result[$"{weightKey}.nested_quant_map"] = tensor(state.Nested.Map).to(device);
        }
        return result;
    }

    /// <summary>Whether <paramref name="dict"/> holds a bitsandbytes 4-bit weight under <paramref name="weightKey"/>.</summary>
    public static bool Contains(IReadOnlyDictionary<string, Tensor> dict, string weightKey)
    {
        ArgumentNullException.ThrowIfNull(dict);
        return dict.ContainsKey($"{weightKey}.{QuantStatePrefix}nf4") || dict.ContainsKey($"{weightKey}.{QuantStatePrefix}fp4");
    }

    /// <summary>Reads one quantized weight (<c>QuantState.from_dict</c>), validating every part.</summary>
    /// <param name="dict">A state dict (e.g. from <see cref="SafetensorsFile.Load"/>).</param>
    /// <param name="weightKey">The weight's key.</param>
    /// <param name="expectedShape">When given, the stored shape must equal it.</param>
    /// <returns>A new state holding copies of the tensors, on their device.</returns>
    /// <exception cref="InvalidDataException">A part is missing, has the wrong dtype or size, an unknown key is present,
    /// the codebook does not match the quant type, or the shape differs from <paramref name="expectedShape"/>.</exception>
    public static QuantState4Bit Read(IReadOnlyDictionary<string, Tensor> dict, string weightKey = "weight", long[]? expectedShape = null)
    {
        ArgumentNullException.ThrowIfNull(dict);
        ArgumentException.ThrowIfNullOrEmpty(weightKey);
        string prefix = weightKey + ".";
        var stateKeys = dict.Keys.Where(k => k.StartsWith(prefix + QuantStatePrefix, StringComparison.Ordinal)).ToList();
        if (stateKeys.Count != 1)
            throw new InvalidDataException(
                $"'{weightKey}': expected exactly one '{prefix}{QuantStatePrefix}<nf4|fp4>' entry; found {stateKeys.Count} ({string.Join(", ", stateKeys)}).");
        foreach (string k in dict.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)))
        {
            string suffix = k[prefix.Length..];
            if (!ValidSuffixes.Contains(suffix))
                throw new InvalidDataException($"'{k}': unknown bitsandbytes quant-state key '{suffix}'; expected one of {string.Join(", ", ValidSuffixes)}.");
        }
        string keyType = stateKeys[0][(prefix + QuantStatePrefix).Length..];
        BnbQuantStateJson json = ParseJson(dict[stateKeys[0]], stateKeys[0]);
        if (json.Unknown is { Count: > 0 })
            throw new InvalidDataException($"'{stateKeys[0]}': unknown quant-state fields {string.Join(", ", json.Unknown.Keys)}.");
        if (json.QuantType != keyType)
            throw new InvalidDataException($"'{stateKeys[0]}': quant_type '{json.QuantType}' disagrees with the key suffix '{keyType}'.");
        QuantType type = ParseQuantType(json.QuantType, stateKeys[0]);
        ScalarType dtype = ParseDtype(json.Dtype, stateKeys[0]);
        if (expectedShape is not null && !expectedShape.SequenceEqual(json.Shape))
            throw new InvalidDataException(
                $"'{weightKey}': stored shape [{string.Join(", ", json.Shape)}] differs from the layer's [{string.Join(", ", expectedShape)}].");

        Tensor packed = Required(dict, weightKey);
        Tensor absmax = Required(dict, prefix + "absmax");
        Tensor quantMap = Required(dict, prefix + "quant_map");
        CheckCodebook(quantMap, Codebooks.For(type), prefix + "quant_map", json.QuantType);

        NestedAbsmaxState? nested = null;
        if (dict.ContainsKey(prefix + "nested_absmax"))
        {
            if (json.NestedBlockSize is not int nbs || json.NestedOffset is not double offset)
                throw new InvalidDataException($"'{stateKeys[0]}': nested tensors are present but nested_blocksize / nested_offset are missing.");
            Tensor nestedMap = Required(dict, prefix + "nested_quant_map");
            if (nestedMap.numel() != 256 || nestedMap.dtype != ScalarType.Float32)
                throw new InvalidDataException($"'{prefix}nested_quant_map' must be float32 with 256 entries; got {nestedMap.dtype} with {nestedMap.numel()}.");
            Tensor nestedAbsmax = Required(dict, prefix + "nested_absmax");
            if (nestedAbsmax.dtype != ScalarType.Float32)
                throw new InvalidDataException($"'{prefix}nested_absmax' must be float32; got {nestedAbsmax.dtype}.");
            try
            {
                nested = new NestedAbsmaxState(nestedAbsmax.clone(), nbs, (float)offset, nestedMap.cpu().data<float>().ToArray());
            }
            catch (ArgumentException e) { throw new InvalidDataException($"'{weightKey}': invalid nested state: {e.Message}", e); }
        }
        try
        {
            return new QuantState4Bit(packed.clone(), absmax.clone(), json.Shape, json.BlockSize, type, dtype, nested);
        }
        catch (ArgumentException e)
        {
            nested?.Dispose();
            throw new InvalidDataException($"'{weightKey}': invalid 4-bit state: {e.Message}", e);
        }
    }

    /// <summary>The bitsandbytes name of a quant type.</summary>
    public static string QuantTypeName(QuantType type) => type == QuantType.Nf4 ? "nf4" : "fp4";

    private static Tensor Required(IReadOnlyDictionary<string, Tensor> dict, string key) =>
        dict.TryGetValue(key, out Tensor? t) ? t : throw new InvalidDataException($"missing bitsandbytes entry '{key}'.");

    private static BnbQuantStateJson ParseJson(Tensor bytes, string key)
    {
        if (bytes.dtype != ScalarType.Byte)
            throw new InvalidDataException($"'{key}' must be a uint8 tensor of UTF-8 JSON; got {bytes.dtype}.");
        string text = Encoding.UTF8.GetString(bytes.cpu().reshape(-1).data<byte>().ToArray());
        try
        {
            return JsonSerializer.Deserialize<BnbQuantStateJson>(text)
                   ?? throw new InvalidDataException($"'{key}' holds JSON null.");
        }
        catch (JsonException e) { throw new InvalidDataException($"'{key}' is not valid quant-state JSON: {e.Message}", e); }
    }

    private static QuantType ParseQuantType(string name, string key) => name switch
    {
        "nf4" => QuantType.Nf4,
        "fp4" => QuantType.Fp4,
        _ => throw new InvalidDataException($"'{key}': quant_type must be 'nf4' or 'fp4'; got '{name}'."),
    };

    /// <summary>The dtypes a quant state restores to: bitsandbytes' compute dtypes.</summary>
    private static bool IsStateDtype(ScalarType dtype) => dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16;

    private static ScalarType ParseDtype(string name, string key)
        => TorchDtypeNames.TryParse(name, out ScalarType dtype) && IsStateDtype(dtype) ? dtype
            : throw new InvalidDataException($"'{key}': dtype must be float32, bfloat16 or float16; got '{name}'.");

    private static string DtypeName(ScalarType dtype)
        => IsStateDtype(dtype) ? TorchDtypeNames.Name(dtype)
            : throw new ArgumentOutOfRangeException(nameof(dtype), dtype, $"dtype must be float32, bfloat16 or float16; got {dtype}.");

    private static void CheckCodebook(Tensor stored, float[] expected, string key, string type)
    {
        if (stored.numel() != expected.Length || !stored.is_floating_point())
            throw new InvalidDataException($"'{key}' must be a float codebook of {expected.Length} values for {type}; got {stored.dtype} with {stored.numel()}.");
        float[] actual = stored.cpu().to(ScalarType.Float32).reshape(-1).data<float>().ToArray();
        for (int i = 0; i < expected.Length; i++)
        {
            if (Math.Abs(actual[i] - expected[i]) > 1e-6)
                throw new InvalidDataException(
                    $"'{key}' is not the {type} codebook: entry {i} is {actual[i]}, expected {expected[i]} (a different quant type or codebook).");
        }
    }
}
