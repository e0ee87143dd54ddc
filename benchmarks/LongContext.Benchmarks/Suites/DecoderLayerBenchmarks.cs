using BenchmarkDotNet.Attributes;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Llama;
using LongContext.Lora;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Benchmarks.Suites;

/// <summary>
/// One Llama decoder layer's training step (forward + backward into the hidden states and the LoRA r=8 q,k,v,o
/// adapters, base frozen), B=1: full attention (baseline) against S2 Roll and S2 NoWrap, with and without activation
/// checkpointing. Shapes: <see cref="LlamaShapes"/>; N 2048 on CPU, 16k and 32k on CUDA.
/// </summary>
public class DecoderLayerBenchmarks : AttentionStepBenchmarks, IWorkload
{
    private LlamaDecoderLayer layer = null!;
    private Tensor x = null!, positions = null!, gradOut = null!;
    private List<Tensor> inputs = null!;
    private RotaryPositions rotaryPositions = null!;

    /// <summary>Sequence length.</summary>
    [ParamsSource(nameof(Lengths))]
    public int N { get; set; }

    /// <summary>Activation checkpointing of the layer.</summary>
    [ParamsAllValues]
    public bool Checkpointing { get; set; }

    /// <summary>Lengths by device.</summary>
    public static IEnumerable<int> Lengths => BenchSettings.Pick([64], [2048], [16384, 32768]);

    /// <summary>Builds the layer on the device, injects LoRA, random inputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Seed();
        LlamaConfig config = LlamaShapes.Config(layers: 1, maxPositions: N);
        var rotary = Keep(new RotaryEmbedding(new RotaryEmbeddingOptions(config.HeadDim, N, config.Rope)));
        layer = Keep(LlamaShapes.OnDevice(() => new LlamaDecoderLayer(config, DType)));
        LoraInjector.Inject(layer, LlamaShapes.Lora);
        layer.to(Device);
        List<Tensor> trainable = LlamaShapes.FreezeAllButLora(layer);
        layer.train();
        layer.GradientCheckpointing = Checkpointing;
        x = Randn([1, N, config.HiddenSize], requiresGrad: true);
        gradOut = Randn([1, N, config.HiddenSize]);
        positions = Make(() => arange(N, ScalarType.Int64, Device).unsqueeze(0));
        rotaryPositions = Keep(RotaryPositions.Compute(rotary, positions, DType));   // the model computes these once per forward
        inputs = [x, .. trainable];
    }

    /// <summary>Frees the layer and inputs.</summary>
    [GlobalCleanup]
    public void TearDown() => Cleanup();

    /// <inheritdoc />
    protected override void Step(StepAttention attention)
    {
        layer.SelfAttention.Core.Configure(LlamaShapes.Attention(attention));
        Measure(Pass.ForwardBackward, () => layer.forward(x, new DecoderInputs(rotaryPositions)), gradOut, inputs);
    }

    /// <inheritdoc />
    public Work WorkOf(string benchmarkMethod) => new(0, 0, N);
}
