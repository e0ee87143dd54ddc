using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Quantization;

/// <summary>
/// The code values of bitsandbytes' quantization data types: the 16-entry NF4 and FP4 codebooks (index = 4-bit code;
/// bnb's <c>quant_map</c>) and the 256-entry signed 8-bit dynamic map used for double quantization of the block scales.
/// </summary>
public static class Codebooks
{
    private static readonly float[] Nf4Values =
    {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
        -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
        0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
        0.7229568362236023f, 1.0f,
    };

    // bitsandbytes' FP4 (e2m1 with a bias such that the largest magnitude is 12), indexed by code, divided by 12 in
    // float32 as get_4bit_type does. Codes 0..7 are positive, 8..15 the same magnitudes negated; entry 8 is +0.0, as
    // bnb's quant_map stores it (its table lists the Python int -0).
    private static readonly float[] Fp4Values = BuildFp4();

    private static readonly Lazy<float[]> DynamicValues = new(BuildDynamicMap);

    /// <summary>NF4 code values (16, ascending, -1 .. 1), index = 4-bit code.</summary>
    public static float[] Nf4 => (float[])Nf4Values.Clone();

    /// <summary>
    /// FP4 code values (16) in bitsandbytes' code order: 0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4, then the same negated,
    /// exactly bnb's <c>quant_map</c> (<c>get_4bit_type("fp4")</c>): entry 8 is +0.0 (bnb's CUDA kernel dequantizes code 8
    /// to -0.0, the same value).
    /// </summary>
    public static float[] Fp4 => (float[])Fp4Values.Clone();

    /// <summary>
    /// bitsandbytes' signed 8-bit dynamic map (<c>create_dynamic_map(signed=True)</c>): 256 ascending values in
    /// [-0.993, 1], computed in float32 as the Python original (dynamic exponent, linear fraction) with libtorch's
    /// <c>linspace</c>. PyTorch versions differ in the last bit of some entries (linspace rounding); checkpoints carry
    /// their own map (<c>nested_quant_map</c>), which is what dequantization uses.
    /// </summary>
    public static float[] DynamicMap8Bit => (float[])DynamicValues.Value.Clone();

    /// <summary>The 16 code values of a 4-bit type.</summary>
    /// <param name="type">NF4 or FP4.</param>
    public static float[] For(QuantType type) => type switch
    {
        QuantType.Nf4 => Nf4,
        QuantType.Fp4 => Fp4,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, $"type must be Nf4 or Fp4; got {type}."),
    };

    internal static float[] Shared(QuantType type) => type == QuantType.Nf4 ? Nf4Values : Fp4Values;

    internal static float[] SharedDynamic => DynamicValues.Value;

    private static float[] BuildFp4()
    {
        float[] raw = { 0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f, 0f, -0.0625f, -8f, -12f, -4f, -6f, -2f, -3f };
        return raw.Select(v => v / 12f).ToArray();
    }

    // Follows the Python: for exponent i in 0..6, 2^i + 1 boundaries linspace(0.1, 1) in float32, their midpoints,
    // times 10^(i-6) (float32 arithmetic), both signs; then 0 and 1; sorted. Computed with libtorch on the CPU so that
    // linspace and the float32 products round exactly as PyTorch does.
    private static float[] BuildDynamicMap()
    {
        using var scope = NewDisposeScope();
        var values = new List<float>(256);
        const int maxExponentBits = 7;
        for (int i = 0; i < maxExponentBits; i++)
        {
            long items = (1L << i) + 1;
            var boundaries = linspace(0.1, 1.0, items, dtype: float32);
            var means = (boundaries[TensorIndex.Slice(null, -1)] + boundaries[TensorIndex.Slice(1, null)]) / 2.0;
            double scale = Math.Pow(10, -(maxExponentBits - 1) + i);
            values.AddRange((means * scale).data<float>().ToArray());
            values.AddRange((means * -scale).data<float>().ToArray());
        }
        values.Add(0f);
        values.Add(1f);
        values.Sort();
        return values.ToArray();
    }
}
