using System.Globalization;
using System.Text.RegularExpressions;
using LongContext.Attention;
using LongContext.IO;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

/// <summary>S2-Attn and full attention against the float64 fixtures of <c>generators/s2_reference.py</c>.</summary>
[Trait(Category.Name, Category.Attention)]
[Trait(Category.Name, Category.Reference)]
public sealed partial class S2FixtureTests
{
    public static TheoryData<string> Files => Fixtures.FileCases("s2attn", "s2_*.safetensors");

    public static TheoryData<string, string> FilesAndDevices()
    {
        var data = new TheoryData<string, string>();
        foreach (string f in Fixtures.Files("s2attn", "s2_*.safetensors"))
        {
            data.Add(f, "cpu");
            if (cuda.is_available()) data.Add(f, "cuda");
        }
        return data;
    }

    [Fact]
    public void FixtureFolder_HoldsAtLeastOneCase()
        => Assert.NotEmpty(Fixtures.Files("s2attn", "s2_*.safetensors"));

    [Theory]
    [MemberData(nameof(FilesAndDevices))]
    public void EveryPolicy_MatchesFixture_Float64To1e10_Float32To1e5(string file, string deviceName)
    {
        using var scope = NewDisposeScope();
        var (t, ratio) = Load(file);
        var device = new Device(deviceName);
        foreach (var (dtype, tol) in new[] { (float64, 1e-10), (float32, 1e-5) })
        {
            Tensor q = t["q"].to(dtype, device), k = t["k"].to(dtype, device), v = t["v"].to(dtype, device);
            Check(AttentionFunctions.ShiftedSparse(q, k, v, ratio, S2WrapPolicy.Roll), t["out_roll"], tol, $"{file} roll {dtype} {deviceName}");
            Check(AttentionFunctions.ShiftedSparse(q, k, v, ratio, S2WrapPolicy.NoWrap), t["out_nowrap"], tol, $"{file} nowrap {dtype} {deviceName}");
            Check(AttentionFunctions.FullCausal(q, k, v), t["out_full"], tol, $"{file} full {dtype} {deviceName}");
            var viaOptions = new AttentionOptions { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = ratio };
            Check(AttentionFunctions.Compute(q, k, v, viaOptions), t["out_nowrap"], tol, $"{file} Compute default policy {dtype} {deviceName}");
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void ExplicitMaskFromLayout_MatchesFixture(string file)
    {
        using var scope = NewDisposeScope();
        var (t, ratio) = Load(file);
        Check(AttentionReference.ShiftedSparse(t["q"], t["k"], t["v"], ratio, S2WrapPolicy.Roll), t["out_roll"], 1e-10, $"{file} roll mask");
        Check(AttentionReference.ShiftedSparse(t["q"], t["k"], t["v"], ratio, S2WrapPolicy.NoWrap), t["out_nowrap"], 1e-10, $"{file} nowrap mask");
        Check(AttentionReference.Full(t["q"], t["k"], t["v"]), t["out_full"], 1e-10, $"{file} causal mask");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void TransposedInputs_AsAfterAProjection_MatchFixture(string file)
    {
        // (B, N, H, D) memory seen as (B, H, N, D): the layout a decoder hands over after q_proj(x).view(B, N, H, D).
        using var scope = NewDisposeScope();
        var (t, ratio) = Load(file);
        Tensor Tr(Tensor x) => x.transpose(1, 2).contiguous().transpose(1, 2);
        Tensor q = Tr(t["q"]), k = Tr(t["k"]), v = Tr(t["v"]);
        Check(AttentionFunctions.ShiftedSparse(q, k, v, ratio, S2WrapPolicy.Roll), t["out_roll"], 1e-10, $"{file} roll");
        Check(AttentionFunctions.ShiftedSparse(q, k, v, ratio, S2WrapPolicy.NoWrap), t["out_nowrap"], 1e-10, $"{file} nowrap");
        Check(AttentionFunctions.FullCausal(q, k, v), t["out_full"], 1e-10, $"{file} full");
    }

    private static void Check(Tensor actual, Tensor expectedBnhd, double tol, string what)
        => TensorAssert.Close(actual.cpu(), expectedBnhd.transpose(1, 2), tol, what);

    private static (Dictionary<string, Tensor> Tensors, double Ratio) Load(string file)
    {
        string path = Path.Combine(Fixtures.Folder("s2attn"), file);
        var meta = SafetensorsFile.ReadMetadata(path);
        string ratioText = meta.TryGetValue("group_size_ratio", out var r) ? r
            : RatioInName().Match(file) is { Success: true } m ? m.Groups[1].Value
            : throw new InvalidDataException($"{file}: no group_size_ratio in metadata or file name.");
        return (SafetensorsFile.Load(path), double.Parse(ratioText, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"_r([0-9.]+)\.safetensors$")]
    private static partial Regex RatioInName();
}
