using System.Globalization;
using LongContext.Attention;
using LongContext.GpuCheck.References;
using LongContext.GpuCheck.Results;
using LongContext.IO;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Parity;

/// <summary>
/// Full causal attention (also with keys longer than queries, as from a KV cache) and S2-Attn (Roll and NoWrap) on the
/// device, forward and the gradients of q, k and v, against
/// explicit masked attention in float64 on the CPU (<see cref="AttentionReference"/>, itself first checked against the
/// float64 s2attn fixtures). Tolerance, as PyTorch's own SDPA tests state theirs: max(8 x the error of the same explicit
/// formula run in the dtype on the CPU, 8 u x max |reference|) for outputs, 16 x and 16 u for gradients: fused kernels
/// must be about as accurate as eager attention in their dtype (a wrong mask or policy is off by O(1)).
/// </summary>
internal static class AttentionParity
{
    private const double EagerFactor = 8, ForwardFloorUnits = 8, GradEagerFactor = 16, GradFloorUnits = 16;

    /// <param name="Keys">Keys per head when they outnumber the queries (a KV cache; full attention only), else 0.</param>
    private sealed record Case(string Name, int Heads, int KvHeads, int N, int HeadDim, double Ratio, int Keys = 0);

    public static void Run(ParityContext c)
    {
        foreach (string file in FixtureFiles(c))
            c.Runner.Run("attention", $"float64 reference vs fixture {Path.GetFileName(file)}", "float64", r => ReferenceSelfCheck(r, file));

        Case[] cases = c.Quick
            ? [new("MHA B1 H4 N128 D64", 4, 4, 128, 64, 0.25), new("GQA 4:2 B1 N128 D64", 4, 2, 128, 64, 0.25)]
            : [new("MHA B1 H8 N1024 D128", 8, 8, 1024, 128, 0.25), new("GQA 8:2 B1 N512 D64", 8, 2, 512, 64, 0.25)];
        foreach (Case @case in cases)
            foreach (MaskKind kind in Enum.GetValues<MaskKind>())
                foreach (ScalarType dtype in c.Dtypes)
                    c.Runner.Run("attention", $"{kind} {@case.Name}", Errors.Name(dtype), r => Compare(c, r, @case, kind, dtype));

        // Keys longer than queries (the KV-cache path generation uses): a decode step and a prefill chunk.
        int m = c.Quick ? 128 : 1024;
        Case[] cached = [new($"cached keys: 1 query over {m} keys, GQA 8:2 D128", 8, 2, 1, 128, 1, m),
                         new($"cached keys: 64 queries over {m} keys, GQA 8:2 D128", 8, 2, 64, 128, 1, m)];
        foreach (Case @case in cached)
            foreach (ScalarType dtype in c.Dtypes)
                c.Runner.Run("attention", $"Full {@case.Name}", Errors.Name(dtype), r => Compare(c, r, @case, MaskKind.Full, dtype));
    }

    private static IEnumerable<string> FixtureFiles(ParityContext c)
        => Directory.Exists(c.Folder("s2attn")) ? Directory.EnumerateFiles(c.Folder("s2attn"), "s2_*.safetensors").Order(StringComparer.Ordinal) : [];

    private static void ReferenceSelfCheck(Recorder r, string file)
    {
        var t = SafetensorsFile.Load(file);
        double ratio = double.Parse(SafetensorsFile.ReadMetadata(file)["group_size_ratio"], CultureInfo.InvariantCulture);
        int heads = (int)t["q"].shape[1], n = (int)t["q"].shape[2];
        foreach (var (kind, key) in new[] { (MaskKind.Roll, "out_roll"), (MaskKind.NoWrap, "out_nowrap"), (MaskKind.Full, "out_full") })
        {
            using var allowed = AttentionReference.Allowed(heads, n, ratio, kind);
            r.Close(kind.ToString(), AttentionReference.Attention(t["q"], t["k"], t["v"], allowed), t[key].transpose(1, 2), 1e-10);
        }
    }

    private static void Compare(ParityContext c, Recorder r, Case cs, MaskKind kind, ScalarType dtype)
    {
        var gen = Inputs.Generator(1000 + cs.N + cs.KvHeads);
        var (q, q64) = Inputs.Place(Inputs.Normal(gen, [1, cs.Heads, cs.N, cs.HeadDim]), dtype, c.Device, requiresGrad: true);
        int keys = cs.Keys > 0 ? cs.Keys : cs.N;
        var (k, k64) = Inputs.Place(Inputs.Normal(gen, [1, cs.KvHeads, keys, cs.HeadDim]), dtype, c.Device, requiresGrad: true);
        var (v, v64) = Inputs.Place(Inputs.Normal(gen, [1, cs.KvHeads, keys, cs.HeadDim]), dtype, c.Device, requiresGrad: true);
        var (g, g64) = Inputs.Place(Inputs.Normal(gen, [1, cs.Heads, cs.N, cs.HeadDim]), dtype, c.Device);

        Tensor o = kind switch
        {
            MaskKind.Full => AttentionFunctions.FullCausal(q, k, v),
            MaskKind.Roll => AttentionFunctions.ShiftedSparse(q, k, v, cs.Ratio, S2WrapPolicy.Roll),
            _ => AttentionFunctions.ShiftedSparse(q, k, v, cs.Ratio, S2WrapPolicy.NoWrap),
        };
        var grads = autograd.grad([o], [q, k, v], [g]);

        using var allowed = cs.Keys > 0 ? AttentionReference.AllowedCached(cs.Heads, cs.N, cs.Keys) : AttentionReference.Allowed(cs.Heads, cs.N, cs.Ratio, kind);
        Tensor o64 = AttentionReference.Attention(q64, k64, v64, allowed);
        var refs = autograd.grad([o64], [q64, k64, v64], [g64]);

        // The same explicit formula in the dtype, on the CPU (no fused kernel): the error scale of eager attention.
        var (qe, _) = Inputs.Place(q64.detach(), dtype, CPU, requiresGrad: true);
        var (ke, _) = Inputs.Place(k64.detach(), dtype, CPU, requiresGrad: true);
        var (ve, _) = Inputs.Place(v64.detach(), dtype, CPU, requiresGrad: true);
        Tensor oe = AttentionReference.Attention(qe, ke, ve, allowed);
        var eager = autograd.grad([oe], [qe, ke, ve], [g64.to(dtype)]);

        string[] names = ["dq", "dk", "dv"];
        double Tol(Tensor eagerValue, Tensor reference, double factor, double floorUnits)
            => Math.Max(factor * Errors.MaxAbsDiff(eagerValue, reference), Errors.Ulps(dtype, reference, floorUnits));
        r.Close("out", o, o64, Tol(oe, o64, EagerFactor, ForwardFloorUnits), $"eager {Errors.Name(dtype)} error {Errors.MaxAbsDiff(oe, o64):E2}");
        for (int i = 0; i < 3; i++)
            r.Close(names[i], grads[i], refs[i], Tol(eager[i], refs[i], GradEagerFactor, GradFloorUnits), $"eager error {Errors.MaxAbsDiff(eager[i], refs[i]):E2}");
    }
}
