using System.Globalization;
using LongContext.GpuCheck.References;
using LongContext.GpuCheck.Results;
using LongContext.IO;
using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Tests.Quantization;
using LongContext.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Parity;

/// <summary>
/// 4-bit quantization on the device: <see cref="Blockwise4Bit.Quantize"/> of every <c>quant/</c> fixture case (packed
/// bytes and absmax exactly, with double quantization when the set holds its entries; dequantized values to 1e-7, as the
/// fixture README states), then <see cref="Linear4Bit"/> and QLoRA (<see cref="QLora.Wrap"/>) forward and gradients
/// against float64 linears over the weight decoded from the layer's bitsandbytes state (<see cref="Nf4Reference"/>).
/// Tolerances as <see cref="LoraParity"/>.
/// </summary>
internal static class QuantParity
{
    private const double ValueTolerance = 1e-7;

    public static void Run(ParityContext c)
    {
        foreach (var (file, name, qt) in FixtureCases(c).Take(c.Quick ? 4 : int.MaxValue))
            c.Runner.Run("quant", $"quantize {Path.GetFileNameWithoutExtension(file)}:{name} {qt}", "float32", r => Fixture(c, r, file, name, qt));
        int t = c.Quick ? 32 : 512, fin = c.Quick ? 128 : 1024, fout = c.Quick ? 64 : 768;
        foreach (ScalarType dtype in c.Dtypes)
            foreach (bool dq in new[] { false, true })
            {
                c.Runner.Run("quant", $"Linear4Bit NF4 block 64{(dq ? " double-quant" : "")} x({t},{fin}) W({fout},{fin})", Errors.Name(dtype), r => Linear(c, r, dtype, dq, lora: false, t, fin, fout));
                c.Runner.Run("quant", $"QLoRA NF4 block 64{(dq ? " double-quant" : "")} r8 x({t},{fin}) W({fout},{fin})", Errors.Name(dtype), r => Linear(c, r, dtype, dq, lora: true, t, fin, fout));
            }
    }

    private static IEnumerable<(string File, string Name, string Qt)> FixtureCases(ParityContext c)
    {
        if (!Directory.Exists(c.Folder("quant"))) yield break;
        foreach (string file in Directory.EnumerateFiles(c.Folder("quant"), "*.safetensors").Order(StringComparer.Ordinal))
        {
            var shapes = SafetensorsFile.ReadShapes(file);
            foreach (string key in shapes.Keys.Where(k => k.EndsWith(".input", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            {
                string name = key[..^".input".Length];
                foreach (string qt in new[] { "nf4", "fp4" })
                    if (shapes.ContainsKey($"{name}.{qt}.packed")) yield return (file, name, qt);
            }
        }
    }

    private static void Fixture(ParityContext c, Recorder r, string file, string name, string qt)
    {
        var meta = SafetensorsFile.ReadMetadata(file);
        int blockSize = int.Parse(meta[$"{name}.blocksize"], CultureInfo.InvariantCulture);
        var t = SafetensorsFile.Load(file, SafetensorsFile.ReadShapes(file).Keys.Where(k => k.StartsWith(name + ".", StringComparison.Ordinal)));
        QuantType type = qt == "nf4" ? QuantType.Nf4 : QuantType.Fp4;
        // The input in the set's stated dtype (its float32 values are exact there), as the tests quantize it.
        ScalarType inputDtype = !meta.TryGetValue($"{name}.input_dtype", out string? d) ? ScalarType.Float32
            : TorchDtypeNames.TryParse(d, out ScalarType stated) && stated is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 ? stated
            : throw new InvalidDataException($"{file}: {name}.input_dtype '{d}' is not float32, bfloat16 or float16.");
        Tensor input = t[$"{name}.input"].to(inputDtype).to(c.Device);
        using (var state = Blockwise4Bit.Quantize(input, type, blockSize))
        {
            r.Exact("packed", state.Packed, t[$"{name}.{qt}.packed"].reshape(-1));
            r.Exact("absmax", state.Absmax, t[$"{name}.{qt}.absmax"].reshape(-1));
            using var deq = Blockwise4Bit.Dequantize(state, ScalarType.Float32);
            r.Close("dequantized", deq, t[$"{name}.{qt}.dequantized"], ValueTolerance);
        }
        if (!t.ContainsKey($"{name}.{qt}.dq.absmax_code")) return;   // double quantization entries are optional in a set
        // Double quantization with the set's own 8-bit map (codebook_dynamic8), the one bnb used: the libtorch under
        // TorchSharp builds create_dynamic_map() 1-2 ulps apart in 42 of 256 entries, which moves tie cases.
        float[]? nestedMap = meta.TryGetValue("codebook_dynamic8", out string? m) ? System.Text.Json.JsonSerializer.Deserialize<float[]>(m) : null;
        using var dqState = Blockwise4Bit.Quantize(input, type, blockSize, doubleQuant: true, nestedMap: nestedMap);
        r.Exact("packed (double quant)", dqState.Packed, t[$"{name}.{qt}.packed"].reshape(-1));
        r.Exact("dq absmax codes", dqState.Absmax, t[$"{name}.{qt}.dq.absmax_code"].reshape(-1));
        if (t.TryGetValue($"{name}.{qt}.dq.absmax_scale", out Tensor? scale))
            r.Exact("dq absmax scales", dqState.Nested!.Absmax, scale.reshape(-1));
        if (t.TryGetValue($"{name}.{qt}.dq.offset", out Tensor? offset))
            r.True("dq offset", BitConverter.SingleToInt32Bits(offset.cpu().data<float>()[0]) == BitConverter.SingleToInt32Bits(dqState.Nested!.Offset),
                $"{dqState.Nested!.Offset:R} vs {offset.cpu().data<float>()[0]:R}");
        if (t.TryGetValue($"{name}.{qt}.dq.dequantized", out Tensor? dqDeq))
        {
            using var deq = Blockwise4Bit.Dequantize(dqState, ScalarType.Float32);
            r.Close("dq dequantized", deq, dqDeq, ValueTolerance);
        }
    }

    private static void Linear(ParityContext c, Recorder r, ScalarType dtype, bool doubleQuant, bool lora, int t, int fin, int fout)
    {
        var gen = Inputs.Generator(3000 + (doubleQuant ? 1 : 0));
        using Linear dense = nn.Linear(fin, fout, hasBias: true, device: c.Device, dtype: ScalarType.Float32);
        using (no_grad())
        {
            dense.weight!.copy_(Inputs.Normal(gen, [fout, fin], 1.0 / Math.Sqrt(fin)));
            dense.bias!.copy_(Inputs.Normal(gen, [fout], 0.1).to(dtype));
        }
        var l4 = Linear4Bit.FromLinear(dense, QuantType.Nf4, 64, doubleQuant, computeDtype: dtype);
        using var module = lora ? QLora.Wrap(l4, new LoraOptions { Rank = 8, Alpha = 16 }) : (nn.Module<Tensor, Tensor>)l4;
        var trainable = new List<Tensor>();
        Tensor? a = null, b = null;
        if (module is LoraLinear layer)
        {
            a = layer.LoraA("default");
            b = layer.LoraB("default");
            using (no_grad())
            {
                a.copy_(Inputs.Normal(gen, a.shape, 1.0 / Math.Sqrt(fin)));
                b.copy_(Inputs.Normal(gen, b.shape, 0.5));
            }
            trainable.AddRange([a, b]);
        }
        var (x, x64) = Inputs.Place(Inputs.Normal(gen, [t, fin]), dtype, c.Device, requiresGrad: true);
        Tensor y = module.forward(x);
        var (g, g64) = Inputs.Place(Inputs.Normal(gen, y.shape), y.dtype, c.Device);
        var grads = autograd.grad([y], [x, .. trainable], [g]);

        Tensor w64 = Nf4Reference.Weight(l4), bias64 = l4.Bias!.detach().cpu().to(ScalarType.Float64);
        Tensor y64 = x64.matmul(w64.t()) + bias64;
        Tensor? a64 = a?.detach().cpu().to(ScalarType.Float64).requires_grad_(), b64 = b?.detach().cpu().to(ScalarType.Float64).requires_grad_();
        if (a64 is not null) y64 = y64 + x64.matmul(a64.t()).matmul(b64!.t()) * (16.0 / 8);
        var refs = autograd.grad([y64], a64 is null ? [x64] : [x64, a64, b64!], [g64]);

        r.Close("y", y, y64, LoraParity.Tolerance(y, y64), $"{l4.BytesPerParameter:F3} bytes/param");
        r.Close("dx", grads[0], refs[0], LoraParity.Tolerance(grads[0], refs[0]));
        if (a64 is null) return;
        r.Close("dA", grads[1], refs[1], LoraParity.Tolerance(grads[1], refs[1]));
        r.Close("dB", grads[2], refs[2], LoraParity.Tolerance(grads[2], refs[2]));
    }
}
