namespace LongContext.Quantization;

/// <summary>The 4-bit data type of a blockwise-quantized tensor (bitsandbytes' <c>quant_type</c>).</summary>
public enum QuantType
{
    /// <summary>4-bit NormalFloat (QLoRA): 16 quantiles of a standard normal, scaled to [-1, 1]; bitsandbytes <c>nf4</c>.</summary>
    Nf4,

    /// <summary>4-bit float (1 sign, 2 exponent, 1 mantissa bit), scaled to [-1, 1]; bitsandbytes <c>fp4</c>.</summary>
    Fp4,
}
