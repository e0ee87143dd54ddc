using System.Text.Json.Nodes;
using LongContext.GpuCheck.References;
using LongContext.GpuCheck.Results;
using LongContext.IO;
using LongContext.Rope;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Parity;

/// <summary>
/// Every rope type of <c>rope/rope_manifest.json</c> on the device: the cos/sin tables at each fixture length in order
/// (HF's float32 numbers, abs 1e-4 as the fixture README states), and <see cref="RotaryEmbedding.Apply(Tensor, Tensor, Tensor)"/>
/// of the fixture's q and k, with and without autograd (two code paths), forward and input gradients against the rotation
/// in float64 over HF's cos/sin. float32: abs 5e-4 (the fixture README's q/k tolerance, dominated by float32 angles);
/// bfloat16: 4 u x max |reference| (inputs, cos/sin and the result each rounded once).
/// </summary>
internal static class RopeParity
{
    private const double TableTolerance = 1e-4, EmbedTolerance32 = 5e-4, LowPrecisionUnits = 4;

    public static void Run(ParityContext c)
    {
        string manifestPath = Path.Combine(c.Folder("rope"), "rope_manifest.json");
        if (!File.Exists(manifestPath))
        {
            c.Runner.Run("rope", "fixtures", "-", r => r.Skip("", $"{manifestPath} not found"));
            return;
        }
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        foreach (var (name, entry) in manifest)
        {
            string file = Path.Combine(c.Folder("rope"), $"rope_{name}.safetensors");
            c.Runner.Run("rope", $"{name} cos/sin tables", "float32", r => Tables(c, r, entry!.AsObject(), file));
            foreach (ScalarType dtype in c.Dtypes)
                foreach (bool grad in new[] { false, true })
                    c.Runner.Run("rope", $"{name} apply q,k{(grad ? " + gradients" : "")}", Errors.Name(dtype), r => Apply(c, r, entry!.AsObject(), file, dtype, grad));
        }
    }

    private static void Tables(ParityContext c, Recorder r, JsonObject entry, string file)
    {
        var (p, headDim, maxPos) = Parse(entry);
        var data = SafetensorsFile.Load(file);
        long[] lengths = data.Keys.Where(k => k.StartsWith("cos_", StringComparison.Ordinal)).Select(k => long.Parse(k[4..])).Order().ToArray();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(headDim, maxPos, p));
        foreach (long length in lengths)
        {
            var (cos, sin) = rope.forward(arange(length, ScalarType.Int64, c.Device).unsqueeze(0));
            r.Close($"cos_{length}", cos[0], data[$"cos_{length}"], TableTolerance);
            r.Close($"sin_{length}", sin[0], data[$"sin_{length}"], TableTolerance);
        }
    }

    private static void Apply(ParityContext c, Recorder r, JsonObject entry, string file, ScalarType dtype, bool grad)
    {
        var (p, headDim, maxPos) = Parse(entry);
        var data = SafetensorsFile.Load(file);
        if (!data.ContainsKey("q"))
        {
            r.Skip("", "this fixture set has no q/k (optional)");
            return;
        }
        long n = data["q"].shape[2];
        var (q, q64) = Inputs.Place(data["q"], dtype, c.Device, grad);
        var (k, k64) = Inputs.Place(data["k"], dtype, c.Device, grad);
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(headDim, maxPos, p));
        var (qe, ke) = rope.Apply(q, k, arange(n, ScalarType.Int64, c.Device).unsqueeze(0));
        Tensor cos = data[$"cos_{n}"].to(ScalarType.Float64), sin = data[$"sin_{n}"].to(ScalarType.Float64);
        Tensor qr = RopeReference.Rotate(q64, cos, sin), kr = RopeReference.Rotate(k64, cos, sin);
        double Tol(Tensor reference) => dtype == ScalarType.Float32 ? EmbedTolerance32 : Errors.Ulps(dtype, reference, LowPrecisionUnits);
        r.Close("q", qe, qr, Tol(qr));
        r.Close("k", ke, kr, Tol(kr));
        if (!grad) return;
        var gen = Inputs.Generator(11);
        var (gq, gq64) = Inputs.Place(Inputs.Normal(gen, qe.shape), dtype, c.Device);
        var (gk, gk64) = Inputs.Place(Inputs.Normal(gen, ke.shape), dtype, c.Device);
        var grads = autograd.grad([qe, ke], [q, k], [gq, gk]);
        var refs = autograd.grad([qr, kr], [q64, k64], [gq64, gk64]);
        r.Close("dq", grads[0], refs[0], Tol(refs[0]));
        r.Close("dk", grads[1], refs[1], Tol(refs[1]));
    }

    /// <summary>An entry's config as a config.json with a v5 rope_parameters object, read by <see cref="HfRopeConfig.Read(JsonObject, int, int)"/>.</summary>
    private static (RopeParameters P, int HeadDim, int MaxPos) Parse(JsonObject entry)
    {
        var rope = entry["config"]!.DeepClone().AsObject();
        int headDim = rope["head_dim"]!.GetValue<int>(), maxPos = rope["max_position_embeddings"]!.GetValue<int>();
        rope.Remove("head_dim");
        rope.Remove("max_position_embeddings");
        var config = new JsonObject { ["head_dim"] = headDim, ["max_position_embeddings"] = maxPos, ["rope_parameters"] = rope };
        return (HfRopeConfig.Read(config, headDim, maxPos).Parameters, headDim, maxPos);
    }
}
