namespace LongContext.Quantization;

/// <summary>
/// The decision thresholds of bitsandbytes' CUDA quantizers (<c>dQuantizeNF4</c>, <c>dQuantizeFP4</c> in
/// <c>csrc/kernels.cu</c>), as the float32 values a C compiler gives their literals (each is the float nearest the
/// decimal literal, not the literal read as a double and then rounded to float). A scaled value x = v * (1/absmax)
/// gets the number of thresholds strictly below it: a value equal to a threshold takes the lower code.
/// </summary>
internal static class KernelThresholds
{
    /// <summary>
    /// <c>dQuantizeNF4</c>'s 15 thresholds, ascending: NF4 code = how many are strictly below x (0..15). Four of them
    /// (-0.8480964004993439, 0.1202552504837513, 0.5016634166240692, 0.8614784181118011) are one ulp away from the
    /// float32 midpoint of the two code values they separate; the literal, not the midpoint, decides.
    /// </summary>
    public static readonly float[] Nf4 =
    {
        -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
        -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
        0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
        0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
    };

    /// <summary>
    /// <c>dQuantizeFP4</c>'s 7 thresholds on |x|, ascending. They are not the midpoints of the code values:
    /// 0.583333 lies 6 ulps below that of 1/2 and 2/3, 0.00260417 14 ulps above that of 0 and 1/192.
    /// </summary>
    public static readonly float[] Fp4 =
    {
        0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f,
    };

    /// <summary>
    /// The three magnitude bits of the FP4 code for each rank of |x| among <see cref="Fp4"/> (0..7), i.e. the codes of
    /// 0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1 in bitsandbytes' code order; bit 3 (0b1000) is the sign, set iff x &lt; 0.
    /// </summary>
    public static readonly byte[] Fp4RankBits = { 0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011 };

    /// <summary>The FP4 sign bit.</summary>
    public const byte Fp4SignBit = 0b1000;
}
