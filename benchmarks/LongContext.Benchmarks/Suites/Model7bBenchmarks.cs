using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Quantization;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>Base weights of the 7B step.</summary>
public enum ModelBase
{
    /// <summary>Compute-dtype (bf16) base, LoRA on top.</summary>
    Dense,

    /// <summary>NF4 base with double quantization (QLoRA), LoRA on top.</summary>
    Nf4,
}

/// <summary>
/// A whole 7B-shaped Llama training step (CUDA only in full mode), the anchor's setup: random weights, LoRA r=8 on
/// q,k,v,o, activation checkpointing on every layer, linear PI factor 8, batch 1, forward + backward of the LM loss
/// into the LoRA parameters, no optimizer step. Full attention (baseline) vs S2 Roll vs S2 NoWrap; dense or NF4 base.
/// The smoke mode runs a 2-layer toy of the same code on CPU.
/// </summary>
public class Model7bBenchmarks : AttentionStepBenchmarks, IWorkload
{
    private LlamaForCausalLM model = null!;
    private Tensor ids = null!;
    private List<Tensor> trainable = null!;

    /// <summary>Sequence length: 16k and 32k (the anchor rows).</summary>
    [ParamsSource(nameof(Lengths))]
    public int N { get; set; }

    /// <summary>Dense or 4-bit base.</summary>
    [ParamsAllValues]
    public ModelBase Base { get; set; }

    /// <summary>Lengths by device.</summary>
    public static IEnumerable<int> Lengths => BenchSettings.Pick([64], [256], [16384, 32768]);

    /// <summary>Layers: 32 (2 in smoke mode).</summary>
    public static int Layers => BenchSettings.Pick(2, 2, 32);

    /// <summary>Builds the model on the device (optionally 4-bit), injects LoRA, checkpointing on, random token ids.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Seed();
        LlamaConfig config = LlamaShapes.Config(Layers, maxPositions: N);
        model = Keep(LlamaShapes.OnDevice(() => new LlamaForCausalLM(config, DType)));
        if (Base == ModelBase.Nf4)
        {
            ModelQuantizer.Quantize(model, new QuantizationOptions { ComputeDtype = DType });
            QLora.Inject(model, LlamaShapes.Lora);
        }
        else
        {
            LoraInjector.Inject(model, LlamaShapes.Lora);
        }
        model.to(Device);
        trainable = LlamaShapes.FreezeAllButLora(model);
        model.train();
        model.SetGradientCheckpointing(true);
        ids = Make(() => randint(0, config.VocabSize, [1, N], ScalarType.Int64, Device));
    }

    /// <summary>Frees the model.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <inheritdoc />
    protected override void Step(StepAttention attention)
    {
        model.ConfigureAttention(LlamaShapes.Attention(attention));
        using var scope = NewDisposeScope();
        Tensor loss = model.Loss(ids, ids);
        autograd.grad([loss], trainable);
        Sync();
    }

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod) => new(0, 0, N);
}
