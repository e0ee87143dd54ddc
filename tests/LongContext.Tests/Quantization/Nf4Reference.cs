using System.Text.Json;
using LongContext.Quantization;
using static TorchSharp.torch;

namespace LongContext.Tests.Quantization;

/// <summary>
/// A 4-bit layer's weight decoded in float64 from its bitsandbytes state-dict entries (packed codes, first element in
/// the high nibble; absmax per block, 8-bit coded against <c>nested_quant_map</c> with one scale per nested block plus
/// <c>nested_offset</c> under double quantization) and the NF4 table written out below, without the library's dequantizer.
/// The tests' reference, also compiled into the GPU check program (tools/LongContext.GpuCheck links this file): it
/// reads only the layer's state dict and must stay independent of the library's 4-bit code it checks.
/// </summary>
internal static class Nf4Reference
{
    /// <summary>bitsandbytes' NF4 table (<c>get_4bit_type("nf4")</c>, the QLoRA paper's values).</summary>
    public static IReadOnlyList<double> Table { get; } =
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0,
    ];

    /// <summary>The (out, in) weight of an NF4 <see cref="Linear4Bit"/>, float64 on the CPU.</summary>
    public static Tensor Weight(Linear4Bit layer)
    {
        var sd = layer.state_dict();
        byte[] packed = sd["weight"].cpu().data<byte>().ToArray();
        using var json = JsonDocument.Parse(sd["weight.quant_state.bitsandbytes__nf4"].cpu().data<byte>().ToArray());
        int blockSize = json.RootElement.GetProperty("blocksize").GetInt32();
        long n = layer.OutFeatures * layer.InFeatures;
        double[] absmax;
        if (sd.TryGetValue("weight.nested_absmax", out var scales))
        {
            byte[] codes = sd["weight.absmax"].cpu().data<byte>().ToArray();
            float[] map = sd["weight.nested_quant_map"].cpu().data<float>().ToArray();
            float[] scale = scales.cpu().data<float>().ToArray();
            int nested = json.RootElement.GetProperty("nested_blocksize").GetInt32();
            double offset = json.RootElement.GetProperty("nested_offset").GetDouble();
            absmax = codes.Select((c, i) => map[c] * (double)scale[i / nested] + offset).ToArray();
        }
        else absmax = sd["weight.absmax"].cpu().data<float>().ToArray().Select(v => (double)v).ToArray();
        var w = new double[n];
        for (long i = 0; i < n; i++)
        {
            int code = i % 2 == 0 ? packed[i / 2] >> 4 : packed[i / 2] & 0x0F;
            w[i] = Table[code] * absmax[i / blockSize];
        }
        return tensor(w, layer.OutFeatures, layer.InFeatures);
    }
}
