using LongContext.Rope;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Rope;

/// <summary>Properties of the rotation, checked against explicit float64 computations (<see cref="RopeReference"/>).</summary>
[Trait(Category.Name, Category.Rope)]
public sealed class RotaryEmbeddingTests
{
    private static RopeParameters Yarn => RopeParameters.Yarn(4, 256);

    public static TheoryData<string, RotaryLayout> DevicesAndLayouts()
    {
        var data = new TheoryData<string, RotaryLayout>();
        foreach (string device in RopeReference.DeviceNames())
            foreach (RotaryLayout layout in Enum.GetValues<RotaryLayout>()) data.Add(device, layout);
        return data;
    }

    [Theory]
    [MemberData(nameof(DevicesAndLayouts))]
    public void Apply_MatchesFloat64RotationWithOffsetsPerBatch(string device, RotaryLayout layout)
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(32, 512, Yarn, layout));
        var gen = new Generator(1);
        Tensor x = randn([2, 3, 40, 32], generator: gen);
        var positions = new long[2, 40];
        for (int j = 0; j < 40; j++) { positions[0, j] = 700 + j; positions[1, j] = j % 20; } // offset; two packed sequences
        Tensor y = rope.Apply(x.to(device), RopeReference.Ids(positions).to(device));
        Tensor expected = RopeReference.Rotate(x, RopeReference.Frequencies(rope), positions, rope.AttentionScaling, layout, 32);
        TensorAssert.Close(y, expected, 5e-4, "yarn rotation vs float64 (float32 angles at positions up to 740)");
    }

    private static readonly Dictionary<string, RopeParameters> NormCases = new()
    {
        ["default"] = RopeParameters.Default(),
        ["linear 4"] = RopeParameters.Linear(4),
        ["yarn 4 over 256 (attention factor 1.139)"] = RopeParameters.Yarn(4, 256),
        ["llama3 8 over 128"] = RopeParameters.Llama3(8, 1, 4, 128),
    };

    public static TheoryData<string, RotaryLayout, string> DevicesLayoutsAndNormCases()
    {
        var data = new TheoryData<string, RotaryLayout, string>();
        foreach (string device in RopeReference.DeviceNames())
            foreach (RotaryLayout layout in Enum.GetValues<RotaryLayout>())
                foreach (string name in NormCases.Keys) data.Add(device, layout, name);
        return data;
    }

    [Theory]
    [MemberData(nameof(DevicesLayoutsAndNormCases))]
    public void Apply_ScalesEveryPairNormByTheAttentionScaling(string device, RotaryLayout layout, string name)
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 512, NormCases[name], layout));
        Tensor x = randn([1, 2, 300, 16], generator: new Generator(2)).to(device);
        Tensor y = rope.Apply(x, arange(300, dtype: int64, device: device));
        TensorAssert.Close(PairNorms(y, layout), PairNorms(x, layout) * rope.AttentionScaling, 1e-5, $"{name} pair norms");
    }

    [Theory]
    [InlineData(RopeType.Default)]
    [InlineData(RopeType.Linear)]
    public void Score_DependsOnlyOnPositionDifference(RopeType type)
    {
        using var scope = NewDisposeScope();
        RopeParameters p = type == RopeType.Linear ? RopeParameters.Linear(2.5) : RopeParameters.Default();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 2048, p));
        var gen = new Generator(3);
        Tensor qv = randn([16], generator: gen), kv = randn([16], generator: gen);
        long[] mPositions = [0, 5, 100, 517, 1500], nPositions = [0, 3, 100, 900, 2000];
        Tensor q = qv.expand(1, 1, mPositions.Length, 16), k = kv.expand(1, 1, nPositions.Length, 16);
        Tensor qr = rope.Apply(q.contiguous(), tensor(mPositions)), kr = rope.Apply(k.contiguous(), tensor(nPositions));
        Tensor scores = qr[0, 0].matmul(kr[0, 0].t());
        double[] f = RopeReference.Frequencies(rope), qa = qv.to(float64).data<double>().ToArray(), ka = kv.to(float64).data<double>().ToArray();
        var expected = new double[mPositions.Length * nPositions.Length];
        for (int i = 0; i < mPositions.Length; i++)
            for (int j = 0; j < nPositions.Length; j++)
            {
                double s = 0; long delta = nPositions[j] - mPositions[i];
                for (int t = 0; t < 8; t++) // closed form: a function of n - m only
                {
                    double phi = delta * f[t];
                    s += (qa[t] * ka[t] + qa[t + 8] * ka[t + 8]) * Math.Cos(phi) + (qa[t + 8] * ka[t] - qa[t] * ka[t + 8]) * Math.Sin(phi);
                }
                expected[i * nPositions.Length + j] = s;
            }
        TensorAssert.Close(scores, tensor(expected, [mPositions.Length, nPositions.Length]), 5e-3, $"{type} q.k vs closed form in n - m");
    }

    [Theory]
    [InlineData(4.0)]
    [InlineData(2.5)]
    public void Linear_AtPositionP_EqualsDefaultAtPOverFactor(double factor)
    {
        using var scope = NewDisposeScope();
        using var linear = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 4096, RopeParameters.Linear(factor)));
        using var plain = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 4096, RopeParameters.Default()));
        long step = factor == 4.0 ? 4 : 5, reduced = factor == 4.0 ? 1 : 2; // p = step j, p / f = reduced j
        Tensor j = arange(0, 800, dtype: int64);
        var (cl, sl) = linear.forward(j * step);
        var (cd, sd) = plain.forward(j * reduced);
        TensorAssert.Close(cl, cd, 1e-4, "cos linear(p) vs default(p/f)");
        TensorAssert.Close(sl, sd, 1e-4, "sin linear(p) vs default(p/f)");
        double[] f = RopeReference.Frequencies(plain);
        var expected = new double[800 * 16];
        for (int p = 0; p < 800; p++) for (int i = 0; i < 16; i++) expected[p * 16 + i] = Math.Cos(p * step / factor * f[i % 8]);
        TensorAssert.Close(cl[0], tensor(expected, [800, 16]), 1e-4, "cos linear vs float64 closed form");
    }

    private static (RotaryEmbedding Half, RotaryEmbedding Interleaved, Tensor Permutation) LayoutPair(double partial)
    {
        var p = new RopeParameters { Type = RopeType.Yarn, Factor = 4, OriginalMaxPositionEmbeddings = 128, PartialRotaryFactor = partial };
        var half = new RotaryEmbedding(new RotaryEmbeddingOptions(32, 512, p, RotaryLayout.HalfSplit));
        var inter = new RotaryEmbedding(new RotaryEmbeddingOptions(32, 512, p, RotaryLayout.Interleaved));
        return (half, inter, tensor(RopeReference.HalfFromInterleaved(32, half.RotaryDim)));
    }

    [Theory]
    [InlineData("full rotary", 1.0)]
    [InlineData("partial rotary 0.5", 0.5)]
    public void Layouts_RotateAlikeAfterTheHeadDimPermutation(string name, double partial)
    {
        using var scope = NewDisposeScope();
        var (half, inter, perm) = LayoutPair(partial);
        using (half) using (inter)
        {
            Tensor x = randn([2, 4, 64, 32], generator: new Generator(4));
            Tensor ids = arange(64, dtype: int64) * 7;
            TensorAssert.Close(half.Apply(x.index_select(3, perm), ids), inter.Apply(x, ids).index_select(3, perm), 1e-6, name);
        }
    }

    [Theory]
    [InlineData("full rotary", 1.0)]
    [InlineData("partial rotary 0.5", 0.5)]
    public void Layouts_CosSinTablesArePermutationsOfEachOther(string name, double partial)
    {
        using var scope = NewDisposeScope();
        var (half, inter, perm) = LayoutPair(partial);
        using (half) using (inter)
        {
            Tensor ids = arange(64, dtype: int64) * 7;
            var (ch, sh) = half.forward(ids);
            var (ci, si) = inter.forward(ids);
            Tensor rotaryPerm = perm.narrow(0, 0, half.RotaryDim);
            TensorAssert.Close(ch, ci.index_select(2, rotaryPerm), 0, $"{name}: cos");
            TensorAssert.Close(sh, si.index_select(2, rotaryPerm), 0, $"{name}: sin");
        }
    }

    private static RotaryEmbedding QuarterRotary(RotaryLayout layout)
        => new(new RotaryEmbeddingOptions(64, 512, new RopeParameters { Type = RopeType.Linear, Factor = 2, PartialRotaryFactor = 0.25 }, layout));

    /// <summary>Linear factor 2 over the 16 rotated dims of 64: theta^(-2i/16) / 2.</summary>
    private static double[] QuarterRotaryFrequencies() => Enumerable.Range(0, 8).Select(i => 1 / Math.Pow(10000, 2.0 * i / 16) / 2).ToArray();

    [Fact]
    public void PartialRotary_FrequenciesUseTheRotatedDimension()
    {
        using var scope = NewDisposeScope();
        using var rope = QuarterRotary(RotaryLayout.HalfSplit);
        Assert.Equal(16, rope.RotaryDim);
        TensorAssert.RelativeClose(rope.InverseFrequencies, tensor(QuarterRotaryFrequencies()), 1e-6, "partial inv_freq uses rotaryDim");
        Assert.Equal(new long[] { 1, 50, 16 }, rope.forward(arange(50, dtype: int64)).Cos.shape);
    }

    [Theory]
    [InlineData(RotaryLayout.HalfSplit)]
    [InlineData(RotaryLayout.Interleaved)]
    public void PartialRotary_PassesTheUnrotatedDimsThrough(RotaryLayout layout)
    {
        using var scope = NewDisposeScope();
        using var rope = QuarterRotary(layout);
        Tensor x = randn([1, 2, 50, 64], generator: new Generator(5));
        TensorAssert.Equal(rope.Apply(x, arange(50, dtype: int64)).narrow(3, 16, 48), x.narrow(3, 16, 48), "pass-through dims");
    }

    [Theory]
    [InlineData(RotaryLayout.HalfSplit)]
    [InlineData(RotaryLayout.Interleaved)]
    public void PartialRotary_RotatesTheLeadingDimsAsFloat64(RotaryLayout layout)
    {
        using var scope = NewDisposeScope();
        using var rope = QuarterRotary(layout);
        Tensor x = randn([1, 2, 50, 64], generator: new Generator(5));
        TensorAssert.Close(rope.Apply(x, arange(50, dtype: int64)), RopeReference.Rotate(x, QuarterRotaryFrequencies(), RopeReference.Range(50), 1, layout, 16), 1e-5, "partial vs float64");
    }

    public static TheoryData<string, string> DevicesAndDtypes()
    {
        var data = new TheoryData<string, string>();
        foreach (string device in RopeReference.DeviceNames())
            foreach (string dtype in new[] { "float32", "bfloat16", "float16" }) data.Add(device, dtype);
        return data;
    }

    private static ScalarType Dtype(string name) => name switch { "bfloat16" => ScalarType.BFloat16, "float16" => ScalarType.Float16, _ => ScalarType.Float32 };

    [Theory]
    [MemberData(nameof(DevicesAndDtypes))]
    public void Apply_ComputesInTheInputDtype(string device, string dtypeName)
    {
        using var scope = NewDisposeScope();
        ScalarType dtype = Dtype(dtypeName);
        double tolerance = dtype switch { ScalarType.BFloat16 => 6e-2, ScalarType.Float16 => 8e-3, _ => 5e-4 }; // |x| < 4, a few roundings of the dtype
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(32, 1024, Yarn));
        var gen = new Generator(6);
        Tensor q = randn([2, 4, 100, 32], generator: gen).clamp(-4, 4).to(dtype).to(device), k = randn([2, 2, 100, 32], generator: gen).clamp(-4, 4).to(dtype).to(device);
        Tensor ids = arange(100, dtype: int64, device: device) + 900;
        var (qr, kr) = rope.Apply(q, k, ids);
        Assert.Equal(dtype, qr.dtype);
        Assert.Equal(dtype, kr.dtype);
        double[] f = RopeReference.Frequencies(rope);
        long[,] positions = RopeReference.Range(100, 900);
        TensorAssert.Close(qr, RopeReference.Rotate(q, f, positions, rope.AttentionScaling, RotaryLayout.HalfSplit, 32), tolerance, $"q {dtype}");
        TensorAssert.Close(kr, RopeReference.Rotate(k, f, positions, rope.AttentionScaling, RotaryLayout.HalfSplit, 32), tolerance, $"k {dtype}");
    }

    [Theory]
    [MemberData(nameof(DevicesAndDtypes))]
    public void Apply_MixedDtypes_KeepEachInputsDtype(string device, string dtypeName)
    {
        using var scope = NewDisposeScope();
        ScalarType dtype = Dtype(dtypeName);
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(32, 1024, Yarn));
        Tensor q = randn([2, 4, 10, 32]).to(device), k = randn([2, 2, 10, 32]).to(dtype).to(device);
        var (qMixed, kMixed) = rope.Apply(q, k, arange(10, dtype: int64, device: device));
        Assert.Equal(ScalarType.Float32, qMixed.dtype);
        Assert.Equal(dtype, kMixed.dtype);
    }

    [Theory]
    [MemberData(nameof(DevicesAndLayouts))]
    public void Forward_GivesFloat32CosSinOnTheIdsDevice(string device, RotaryLayout layout)
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(32, 1024, Yarn, layout));
        var (cos, sin) = rope.forward(arange(100, dtype: int64, device: device));
        Assert.Equal(ScalarType.Float32, cos.dtype);
        Assert.Equal(ScalarType.Float32, sin.dtype);
        Assert.Equal(device, cos.device_type == TorchSharp.DeviceType.CUDA ? "cuda" : "cpu");
    }

    private static RotaryEmbedding GradientRope(RotaryLayout layout)
        => new(new RotaryEmbeddingOptions(32, 512, new RopeParameters { Type = RopeType.Yarn, Factor = 8, OriginalMaxPositionEmbeddings = 64, PartialRotaryFactor = 0.75 }, layout));

    private static long[,] Every13th(int n)
    {
        var positions = new long[1, n];
        for (int j = 0; j < n; j++) positions[0, j] = 13 * j;
        return positions;
    }

    [Theory]
    [MemberData(nameof(DevicesAndLayouts))]
    public void Apply_RecordedPathGivesTheNoGradValues(string device, RotaryLayout layout)
    {
        using var scope = NewDisposeScope();
        using var rope = GradientRope(layout);
        Tensor q = randn([2, 3, 20, 32], generator: new Generator(7)).to(device).requires_grad_();
        Tensor ids = arange(20, dtype: int64, device: device) * 13;
        Tensor recorded = rope.Apply(q, ids);
        TensorAssert.Close(recorded, RopeReference.Rotate(q.detach(), RopeReference.Frequencies(rope), Every13th(20), rope.AttentionScaling, layout, 24), 1e-4, "q forward with grad vs float64");
        using (no_grad()) TensorAssert.Close(rope.Apply(q, ids), recorded, 1e-6, "no-grad path vs grad path");
    }

    [Theory]
    [MemberData(nameof(DevicesAndLayouts))]
    public void Apply_GradientIsTheInverseRotationOfTheUpstreamGradient(string device, RotaryLayout layout)
    {
        using var scope = NewDisposeScope();
        using var rope = GradientRope(layout);
        var gen = new Generator(7);
        Tensor q = randn([2, 3, 20, 32], generator: gen).to(device).requires_grad_(), k = randn([2, 1, 20, 32], generator: gen).to(device).requires_grad_();
        Tensor gq = randn([2, 3, 20, 32], generator: gen), gk = randn([2, 1, 20, 32], generator: gen);
        var (qr, kr) = rope.Apply(q, k, arange(20, dtype: int64, device: device) * 13);
        (qr * gq.to(device)).sum().add((kr * gk.to(device)).sum()).backward();
        double[] f = RopeReference.Frequencies(rope);
        TensorAssert.Close(q.grad!, RopeReference.Rotate(gq, f, Every13th(20), rope.AttentionScaling, layout, 24, inverse: true), 1e-4, "dL/dq (float32 angles at positions up to 247)");
        TensorAssert.Close(k.grad!, RopeReference.Rotate(gk, f, Every13th(20), rope.AttentionScaling, layout, 24, inverse: true), 1e-4, "dL/dk");
    }

    [Fact]
    public void Cache_GrowsOnDemandAndServesEarlierPositionsUnchanged()
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 64, RopeParameters.Default()));
        var (c1, _) = rope.forward(arange(10, dtype: int64));
        var (c2, s2) = rope.forward(arange(5000, dtype: int64)); // far past max_position_embeddings and the first table
        TensorAssert.Close(c2.narrow(1, 0, 10), c1, 0, "cos of the first positions after growth");
        double[] f = RopeReference.Frequencies(rope);
        var expected = new double[16];
        for (int i = 0; i < 16; i++) expected[i] = Math.Sin(4999 * f[i % 8]);
        TensorAssert.Close(s2[0, 4999], tensor(expected), 1e-3, "sin at 4999 vs float64 (float32 angle as HF)");
    }

    /// <summary>Dynamic NTK, factor 4 over a 256 window, d = 16: inverse frequencies of the base grown for length L (float64).</summary>
    private static double[] DynamicFrequencies(long length)
    {
        double b = length <= 256 ? 10000 : 10000 * Math.Pow(4.0 * length / 256 - 3, 16.0 / 14);
        return Enumerable.Range(0, 8).Select(i => Math.Pow(b, -2.0 * i / 16)).ToArray();
    }

    [Theory]
    [InlineData("grows past the cached maximum", new long[] { 1000 }, 1000L)]
    [InlineData("keeps the grown base between the window and the cached maximum", new long[] { 1000, 600 }, 1000L)]
    [InlineData("keeps it at the window (HF resets only below it)", new long[] { 1000, 256 }, 1000L)]
    [InlineData("resets below the window", new long[] { 1000, 100 }, 256L)]
    [InlineData("grows again past the cached maximum", new long[] { 1000, 600, 1500 }, 1500L)]
    public void Dynamic_FrequenciesFollowTheLongestSequenceSeen(string name, long[] lengths, long effective)
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 256, RopeParameters.Dynamic(4)));
        foreach (long n in lengths) rope.forward(arange(n, dtype: int64));
        TensorAssert.RelativeClose(rope.InverseFrequencies, tensor(DynamicFrequencies(effective)), 1e-6, name);
    }

    [Fact]
    public void Dynamic_LengthBetweenTheWindowAndTheCachedMaximum_GetsTheGrownBasesCosSin()
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 256, RopeParameters.Dynamic(4)));
        rope.forward(arange(1000, dtype: int64));
        var (cos, sin) = rope.forward(arange(600, dtype: int64));
        // closed form: the base grown for 1000 (not 600), angles p * inv_i with inv_i rounded to float32 as HF stores it
        double[] f = DynamicFrequencies(1000).Select(v => (double)(float)v).ToArray();
        var expectedCos = new double[600 * 16];
        var expectedSin = new double[600 * 16];
        for (int p = 0; p < 600; p++)
            for (int i = 0; i < 16; i++)
            {
                expectedCos[p * 16 + i] = Math.Cos(p * f[i % 8]);
                expectedSin[p * 16 + i] = Math.Sin(p * f[i % 8]);
            }
        // float32 angles of positions below 600 and a few ulp of pow in the frequencies: < 2e-4
        TensorAssert.Close(cos[0], tensor(expectedCos, [600, 16]), 2e-4, "cos at 600 after 1000");
        TensorAssert.Close(sin[0], tensor(expectedSin, [600, 16]), 2e-4, "sin at 600 after 1000");
    }

    [Fact]
    public void PositionLimit_PositionPastIt_ThrowsNamingIt()
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 128, RopeParameters.Default()) { PositionLimit = 128 });
        rope.forward(arange(128, dtype: int64));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => rope.forward(arange(129, dtype: int64)));
        Assert.Equal("positionIds", ex.ParamName);
        Assert.Contains("128", ex.Message);
        Assert.Contains("PositionLimit", ex.Message);
    }

    [Fact]
    public void NegativePosition_ThrowsNamingIt()
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 128, RopeParameters.Default()));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => rope.Apply(zeros(1, 1, 2, 16), tensor(new long[] { 0, -3 })));
        Assert.Contains("-3", ex.Message);
    }

    [Theory]
    [InlineData("head dim 12 instead of 16", "x", "12")]
    [InlineData("7 positions for 8 tokens", "positionIds", "(7)")]
    [InlineData("float position ids", "positionIds", "Float32")]
    public void BadInput_ThrowsNamingTheArgument(string name, string argument, string shown)
    {
        using var scope = NewDisposeScope();
        using var rope = new RotaryEmbedding(new RotaryEmbeddingOptions(16, 128, RopeParameters.Default()));
        Action call = name switch
        {
            "head dim 12 instead of 16" => () => rope.Apply(zeros(1, 2, 8, 12), arange(8, dtype: int64)),
            "7 positions for 8 tokens" => () => rope.Apply(zeros(1, 2, 8, 16), arange(7, dtype: int64)),
            _ => () => rope.forward(arange(7, dtype: float32)),
        };
        var ex = Assert.Throws<ArgumentException>(call);
        Assert.Equal(argument, ex.ParamName);
        Assert.Contains(shown, ex.Message);
    }

    private static Tensor PairNorms(Tensor x, RotaryLayout layout)
    {
        long h = x.shape[3] / 2;
        if (layout == RotaryLayout.HalfSplit)
            return (x.narrow(3, 0, h).square() + x.narrow(3, h, h).square()).sqrt();
        Tensor pairs = x.unflatten(3, h, 2);
        return (pairs.select(4, 0).square() + pairs.select(4, 1).square()).sqrt();
    }
}
