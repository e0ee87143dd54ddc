using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace LongContext.Benchmarks.Baselines;

/// <summary>
/// Checks, run by the smoke mode, that the eager baselines compute what they claim: the S2 recipes against SDPA with an
/// explicit boolean group mask in float64, and the NF4 recipe against a per-element loop; and that the library rows
/// compute the same outputs as the baselines they are compared with. A baseline that computes
/// something else would make every ratio against it meaningless.
/// </summary>
public static class RecipeChecks
{
    /// <summary>Runs every check on CPU; throws <see cref="InvalidOperationException"/> naming the first mismatch.</summary>
    public static void Run()
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        const int h = 4, kv = 2, n = 32, d = 8, divisor = 4;
        const long g = n / divisor;
        Tensor q = randn([1, h, n, d], ScalarType.Float64), k = randn([1, kv, n, d], ScalarType.Float64), v = randn([1, kv, n, d], ScalarType.Float64);
        Tensor kr = EagerAttention.RepeatKv(k, h / kv), vr = EagerAttention.RepeatKv(v, h / kv);

        // Group id of (head, token) under each policy; attention is allowed within a group, causally in token order.
        long Plain(long i) => i / g;
        long Roll(long i) => ((i - g / 2 + n) % n) / g;
        long NoWrap(long i) => (i + g / 2) / g;
        Tensor Reference(Func<long, long> first, Func<long, long> second, bool rolledOrder)
        {
            var mask = new bool[h * n * n];
            for (long hh = 0; hh < h; hh++)
            for (long i = 0; i < n; i++)
            for (long j = 0; j < n; j++)
            {
                bool shiftedHead = hh >= h / 2;
                Func<long, long> group = shiftedHead ? second : first;
                // Under roll the wrap group keeps the rolled order: token j precedes i when its rolled index is smaller.
                long ti = rolledOrder && shiftedHead ? (i - g / 2 + n) % n : i;
                long tj = rolledOrder && shiftedHead ? (j - g / 2 + n) % n : j;
                mask[(hh * n + i) * n + j] = group(i) == group(j) && tj <= ti;
            }
            return scaled_dot_product_attention(q, kr, vr, tensor(mask, [1, h, n, n]));
        }

        Expect("full causal recipe", EagerAttention.FullCausal(q, k, v), Reference(_ => 0, _ => 0, rolledOrder: false));
        Expect("S2 roll recipe", EagerAttention.S2Roll(q, k, v, divisor), Reference(Plain, Roll, rolledOrder: true));
        Expect("S2 no-wrap recipe", EagerAttention.S2NoWrap(q, k, v, divisor), Reference(Plain, NoWrap, rolledOrder: false));

        // The library rows must compute the same outputs as the baselines they are compared with.
        Expect("library FullCausal", LongContext.Attention.AttentionFunctions.FullCausal(q, k, v), Reference(_ => 0, _ => 0, rolledOrder: false));
        Expect("library ShiftedSparse(Roll)", LongContext.Attention.AttentionFunctions.ShiftedSparse(q, k, v, 1.0 / divisor, LongContext.Attention.S2WrapPolicy.Roll), Reference(Plain, Roll, rolledOrder: true));
        Expect("library ShiftedSparse(NoWrap)", LongContext.Attention.AttentionFunctions.ShiftedSparse(q, k, v, 1.0 / divisor, LongContext.Attention.S2WrapPolicy.NoWrap), Reference(Plain, NoWrap, rolledOrder: false));

        // RoPE: the library's apply equals the rotate_half recipe (float64, linear factor 4).
        {
            Tensor rq = randn([1, 2, 16, 8], ScalarType.Float64), rk = randn([1, 2, 16, 8], ScalarType.Float64);
            Tensor pos = arange(16, ScalarType.Int64).unsqueeze(0);
            var (cosC, sinC) = EagerRope.Caches(8, 16, 10000, 4, CPU);
            var eager = EagerRope.Apply(rq, rk, pos, cosC.to(ScalarType.Float64), sinC.to(ScalarType.Float64));
            using var rotary = new LongContext.Rope.RotaryEmbedding(new LongContext.Rope.RotaryEmbeddingOptions(8, 16, LongContext.Rope.RopeParameters.Linear(4)));
            var lib = rotary.Apply(rq, rk, pos);
            Expect("library RotaryEmbedding.Apply (q)", lib.Q, eager.Q, 1e-5);
            Expect("library RotaryEmbedding.Apply (k)", lib.K, eager.K, 1e-5);
        }

        // LoRA: the library's LoraLinear equals peft's base(x) + B(A(x)) * alpha/r with the same weights.
        {
            using var baseLinear = TorchSharp.torch.nn.Linear(32, 24, hasBias: false, dtype: ScalarType.Float64);
            using var a = TorchSharp.torch.nn.Linear(32, Suites.LinearShapes.Rank, hasBias: false, dtype: ScalarType.Float64);
            using var b = TorchSharp.torch.nn.Linear(Suites.LinearShapes.Rank, 24, hasBias: false, dtype: ScalarType.Float64);
            var peft = new PeftStyleLora(baseLinear, a, b, (double)Suites.LinearShapes.Alpha / Suites.LinearShapes.Rank);
            using var lib = Suites.LoraBenchmarks.LibraryLora(baseLinear, a, b, CPU, ScalarType.Float64);
            Tensor x = randn([5, 32], ScalarType.Float64);
            Expect("library LoraLinear", lib.forward(x), peft.Forward(x), 1e-9);
        }

        // NF4: codes unpacked high nibble first, times the block's absmax.
        EagerNf4.State state = EagerNf4.RandomState(4, 64, 64, doubleQuant: false, CPU);
        Tensor deq = EagerNf4.Dequantize(state, ScalarType.Float32);
        byte[] packed = state.Packed.data<byte>().ToArray();
        float[] absmax = state.Absmax!.data<float>().ToArray();
        var expected = new float[256];
        for (int i = 0; i < 256; i++)
        {
            int code = (i % 2 == 0) ? packed[i / 2] >> 4 : packed[i / 2] & 15;
            expected[i] = EagerNf4.Codebook[code] * absmax[i / 64];
        }
        Expect("NF4 shift/mask recipe", deq.view(-1).to(ScalarType.Float64), tensor(expected).to(ScalarType.Float64));
        state.Dispose();
    }

    private static void Expect(string what, Tensor actual, Tensor expected, double tolerance = 1e-6)
    {
        double err = (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().item<double>();
        if (!(err < tolerance))
        {
            throw new InvalidOperationException($"{what}: max abs difference {err:G3} from its reference (expected < {tolerance:G3}).");
        }
    }
}
