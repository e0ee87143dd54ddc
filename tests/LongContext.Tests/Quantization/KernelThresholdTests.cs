using System.Numerics;
using LongContext.Quantization;
using LongContext.Tests.Support;

namespace LongContext.Tests.Quantization;

/// <summary>
/// The decision thresholds against the literals of bitsandbytes' <c>csrc/kernels.cu</c> (<c>dQuantizeNF4</c>,
/// <c>dQuantizeFP4</c>), copied here as text: each threshold must be the float32 nearest its decimal literal, as a C
/// compiler converts a <c>...f</c> literal, checked in exact integer arithmetic.
/// </summary>
[Trait(Category.Name, Category.Quantization)]
public sealed class KernelThresholdTests
{
    private static readonly string[] Nf4Literals =
    {
        "-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
        "-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
        "0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
        "0.5016634166240692", "0.6427869200706482", "0.8614784181118011",
    };

    private static readonly string[] Fp4Literals =
    {
        "0.00260417", "0.0859375", "0.20833333", "0.29166667", "0.4166667", "0.583333", "0.8333333",
    };

    [Fact]
    public void Nf4Thresholds_AreTheFloat32NearestTheKernelsLiterals()
        => AssertNearest(Nf4Literals, KernelThresholds.Nf4);

    [Fact]
    public void Fp4Thresholds_AreTheFloat32NearestTheKernelsLiterals()
        => AssertNearest(Fp4Literals, KernelThresholds.Fp4);

    [Fact]
    public void Nf4Thresholds_SeparateConsecutiveCodes_WithinAnUlpOfTheirMidpoints()
    {
        float[] code = Codebooks.Nf4;
        for (int i = 0; i < 15; i++)
        {
            float t = KernelThresholds.Nf4[i];
            double mid = ((double)code[i] + code[i + 1]) / 2;
            Assert.True(code[i] < t && t < code[i + 1], $"threshold {i} ({t:R}) is not between codes {code[i]:R} and {code[i + 1]:R}");
            Assert.True(Math.Abs(t - mid) <= MathF.BitIncrement(Math.Abs(t)) - Math.Abs(t),
                $"threshold {i} ({t:R}) is more than an ulp from the midpoint {mid:R}");
        }
    }

    private static void AssertNearest(string[] literals, float[] thresholds)
    {
        Assert.Equal(literals.Length, thresholds.Length);
        for (int i = 0; i < literals.Length; i++)
        {
            var (digits, scale) = Decimal(literals[i]);
            BigInteger d0 = BigInteger.Abs(Scaled(thresholds[i], scale) - digits);
            BigInteger below = BigInteger.Abs(Scaled(MathF.BitDecrement(thresholds[i]), scale) - digits);
            BigInteger above = BigInteger.Abs(Scaled(MathF.BitIncrement(thresholds[i]), scale) - digits);
            Assert.True(d0 < below && d0 < above,
                $"threshold {i} ({thresholds[i]:R}) is not the float32 nearest the literal {literals[i]}");
        }
    }

    // The literal as digits * 2^200 / 10^scale.
    private static (BigInteger Digits, int Scale) Decimal(string literal)
    {
        bool negative = literal.StartsWith('-');
        string body = negative ? literal[1..] : literal;
        int dot = body.IndexOf('.');
        int scale = dot < 0 ? 0 : body.Length - dot - 1;
        BigInteger digits = BigInteger.Parse(body.Replace(".", ""), System.Globalization.CultureInfo.InvariantCulture) << 200;
        return (negative ? -digits : digits, scale);
    }

    // f * 10^scale * 2^200, exact: a float32 is m * 2^e with e >= -149.
    private static BigInteger Scaled(float f, int scale)
    {
        int bits = BitConverter.SingleToInt32Bits(f);
        int exponent = (bits >> 23) & 0xFF;
        long mantissa = bits & 0x7FFFFF;
        if (exponent != 0) mantissa |= 1L << 23; else exponent = 1;
        int e = exponent - 127 - 23;
        BigInteger value = new BigInteger(mantissa) * BigInteger.Pow(10, scale) << (200 + e);
        return bits < 0 ? -value : value;
    }
}
