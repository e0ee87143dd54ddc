using LongContext.Attention;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Attention;

/// <summary>Backward through the fast paths against autograd through the explicit masked float64 reference.</summary>
[Trait(Category.Name, Category.Attention)]
public sealed class AttentionGradientTests
{
    public static TheoryData<string, int, int, bool> Cases => new()
    {
        { "NoWrap", 4, 4, false }, { "Roll", 4, 4, false }, { "NoWrap", 8, 2, false }, { "Roll", 8, 2, true }, { "NoWrap", 4, 2, true }, { "Full", 4, 2, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gradients_MatchMaskedReference_Float64(string policy, int hq, int hkv, bool padded)
    {
        using var scope = NewDisposeScope();
        const int n = 32;
        var (q0, k0, v0) = AttentionReference.Random(2, hq, hkv, n, 8, seed: 5);
        Tensor? keep = null;
        if (padded)
        {
            keep = ones(2, n, dtype: ScalarType.Bool);
            keep[1, TensorIndex.Slice(n - 6, n)] = tensor(false);
        }
        var upstream = randn(new long[] { 2, hq, n, 8 }, float64, generator: new Generator(9));

        (Tensor, Tensor, Tensor) Grads(Func<Tensor, Tensor, Tensor, Tensor> f)
        {
            var (q, k, v) = (q0.clone().requires_grad_(), k0.clone().requires_grad_(), v0.clone().requires_grad_());
            f(q, k, v).backward(new[] { upstream });
            return (q.grad!, k.grad!, v.grad!);
        }

        var fast = policy == "Full"
            ? Grads((q, k, v) => AttentionFunctions.FullCausal(q, k, v, keep))
            : Grads((q, k, v) => AttentionFunctions.ShiftedSparse(q, k, v, 0.25, Enum.Parse<S2WrapPolicy>(policy), keep));
        var reference = policy == "Full"
            ? Grads((q, k, v) => AttentionReference.Full(q, k, v, keep))
            : Grads((q, k, v) => AttentionReference.ShiftedSparse(q, k, v, 0.25, Enum.Parse<S2WrapPolicy>(policy), keep));
        TensorAssert.Close(fast.Item1, reference.Item1, 1e-8, "dq");
        TensorAssert.Close(fast.Item2, reference.Item2, 1e-8, "dk");
        TensorAssert.Close(fast.Item3, reference.Item3, 1e-8, "dv");
    }

    [Theory]
    [InlineData(S2WrapPolicy.NoWrap)]
    [InlineData(S2WrapPolicy.Roll)]
    public void NoGradientReachesAMaskedKey(S2WrapPolicy policy)
    {
        using var scope = NewDisposeScope();
        const int n = 32, h = 4;
        var (q0, k0, v0) = AttentionReference.Random(1, h, h, n, 8, seed: 6);
        using var allowed = AttentionReference.S2Mask(h, n, 0.25, policy);
        foreach (int head in new[] { 0, 3 })
            foreach (int p in new[] { 0, 2, 7, 17, 31 })
            {
                var (q, k, v) = (q0.clone().requires_grad_(), k0.clone().requires_grad_(), v0.clone().requires_grad_());
                AttentionFunctions.ShiftedSparse(q, k, v, 0.25, policy)[0, head, p].sum().backward();
                var row = allowed[head, p].view(n, 1);             // keys query p of this head may see
                var dk = k.grad![0, head].abs().sum(1, keepdim: true);
                var dv = v.grad![0, head].abs().sum(1, keepdim: true);
                TensorAssert.Close(dv.masked_fill(row, 0), zeros_like(dv), 0, $"{policy} head {head} query {p}: dv at masked keys");
                TensorAssert.Close(dk.masked_fill(row, 0), zeros_like(dk), 0, $"{policy} head {head} query {p}: dk at masked keys");
                Assert.True(dv.masked_select(row).gt(0).all().item<bool>(), $"{policy} head {head} query {p}: every visible value gets gradient");
                var otherHeads = v.grad![0].abs().sum().item<double>() - v.grad![0, head].abs().sum().item<double>();
                Assert.Equal(0.0, otherHeads);
            }
    }
}
