using LongContext.Attention;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>Which attention a training step uses.</summary>
public enum StepAttention
{
    /// <summary>Full causal attention.</summary>
    Full,

    /// <summary>S2-Attn, group N/4, Roll policy (LongLoRA-compatible).</summary>
    S2Roll,

    /// <summary>S2-Attn, group N/4, no wrap-around.</summary>
    S2NoWrap,
}

/// <summary>
/// Llama shapes of the training-step suites. CUDA: the 7B shape of ANCHORS.md (hidden 4096, 32 heads of 128, MLP
/// 11008, vocab 32000, 32 layers), linear PI factor 8, LoRA r=8 (alpha 16) on q,k,v,o, everything else frozen.
/// CPU: hidden 1024, 8 heads of 128, MLP 2816. Smoke: hidden 64, 4 heads of 16, MLP 128, vocab 128, 2 layers.
/// </summary>
public static class LlamaShapes
{
    /// <summary>The known LongContext.Lora leak these suites inherit (detached views kept per LoraLinear forward).</summary>
    public const string LoraLeak = "LongContext.Lora: LoraFusedLinearFunction keeps its detached W/A/B views (3 per LoraLinear forward, 2 over a 4-bit base) alive; reported to the lead";

    /// <summary>The config for <paramref name="layers"/> layers and context <paramref name="maxPositions"/>.</summary>
    public static LlamaConfig Config(int layers, int maxPositions) => new LlamaConfig
    {
        VocabSize = BenchSettings.Pick(128, 32000, 32000),
        HiddenSize = BenchSettings.Pick(64, 1024, 4096),
        IntermediateSize = BenchSettings.Pick(128, 2816, 11008),
        NumHiddenLayers = layers,
        NumAttentionHeads = BenchSettings.Pick(4, 8, 32),
        NumKeyValueHeads = BenchSettings.Pick(4, 8, 32),
        HeadDim = BenchSettings.Pick(16, 128, 128),
        MaxPositionEmbeddings = maxPositions,
        RmsNormEps = 1e-5,
        Rope = RopeParameters.Linear(8),
    };

    /// <summary>LoRA of the anchor: r=8, alpha 16, on q, k, v and o.</summary>
    public static LoraOptions Lora => new() { Rank = 8, Alpha = 16, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"] };

    /// <summary>The attention options of a step.</summary>
    public static AttentionOptions Attention(StepAttention kind) => kind switch
    {
        StepAttention.Full => new AttentionOptions { Mode = AttentionMode.Full },
        StepAttention.S2Roll => new AttentionOptions { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.25, WrapPolicy = S2WrapPolicy.Roll },
        _ => new AttentionOptions { Mode = AttentionMode.ShiftedSparse, GroupSizeRatio = 0.25, WrapPolicy = S2WrapPolicy.NoWrap },
    };

    /// <summary>Freezes every parameter but the LoRA ones (peft's rule) and returns the trainable ones, with a non-zero B.</summary>
    public static List<Tensor> FreezeAllButLora(nn.Module module)
    {
        var trainable = new List<Tensor>();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, p) in module.named_parameters())
        {
            bool lora = name.Contains("lora_", StringComparison.Ordinal);
            p.requires_grad = lora;
            if (!lora) continue;
            if (name.Contains("lora_B", StringComparison.Ordinal)) p.copy_(randn(p.shape, ScalarType.Float32, p.device).mul_(0.01));
            trainable.Add(p);
        }
        return trainable;
    }

    /// <summary>Builds a module directly on the run's device (default device switched for the construction), then moves it there.</summary>
    public static T OnDevice<T>(Func<T> build) where T : nn.Module
    {
        torch.set_default_device(BenchSettings.Device);
        try
        {
            return build().to(BenchSettings.Device);
        }
        finally
        {
            torch.set_default_device(CPU);
        }
    }
}
