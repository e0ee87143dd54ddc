using LongContext.Lora;
using LongContext.Quantization;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// QLoRA as composition: a <see cref="LoraLinear"/> over a frozen <see cref="Linear4Bit"/>, reached through a
/// <see cref="LinearBaseDescriptor"/> that dequantizes on the fly (in forward, and again in backward rather than
/// keeping it). Adapters are float32 over a half-precision compute dtype unless
/// <see cref="LoraOptions.AutocastAdapterDtype"/> is false. Merging dequantizes, adds the LoRA delta and requantizes
/// (lossy: the merged weight carries the 4-bit rounding error of the new values, see <see cref="Linear4Bit.MergeDelta"/>).
/// </summary>
public static class QLora
{
    /// <summary>Describes a <see cref="Linear4Bit"/> for LoRA injection (null for any other module); a <see cref="LoraBaseResolver"/>.</summary>
    /// <param name="module">A module of the tree.</param>
    public static LoraBaseDescriptor? Resolve(nn.Module module) => module is Linear4Bit l4 ? new Linear4BitBase(l4) : null;

    /// <summary>Wraps one 4-bit linear in a LoRA layer (QLoRA's linear).</summary>
    /// <param name="layer">The frozen 4-bit base.</param>
    /// <param name="options">The adapter's hyper-parameters.</param>
    /// <param name="adapterName">The adapter's name.</param>
    public static LoraLinear Wrap(Linear4Bit layer, LoraOptions options, string adapterName = "default")
    {
        ArgumentNullException.ThrowIfNull(layer);
        return new LoraLinear(new Linear4BitBase(layer), options, adapterName);
    }

    /// <summary>
    /// Injects LoRA into a (4-bit quantized) model: 4-bit linears count as linear targets (so <c>all-linear</c>
    /// covers them, as in QLoRA and LongQLoRA), TorchSharp Linears and Embeddings as usual.
    /// </summary>
    /// <param name="root">The model, typically after <see cref="ModelQuantizer.Quantize"/> and <see cref="ModelQuantizer.PrepareForKbitTraining"/>.</param>
    /// <param name="options">Adapter hyper-parameters and targets.</param>
    /// <param name="adapterName">The adapter's name.</param>
    public static LoraInjectionReport Inject(nn.Module root, LoraOptions options, string adapterName = "default")
        => LoraInjector.Inject(root, options, adapterName, Resolve);

    /// <summary>Loads a peft adapter onto a (4-bit quantized) model.</summary>
    /// <param name="root">The model.</param>
    /// <param name="folder">Folder holding <c>adapter_config.json</c> and <c>adapter_model.safetensors</c>.</param>
    /// <param name="adapterName">The adapter's name.</param>
    public static LoraInjectionReport LoadAdapter(nn.Module root, string folder, string adapterName = "default")
        => PeftAdapter.Load(root, folder, adapterName, Resolve);

    /// <summary>A 4-bit linear's dense weight is its dequantization in the compute dtype; a merge requantizes.</summary>
    private sealed class Linear4BitBase(Linear4Bit layer) : LinearBaseDescriptor(layer, layer.InFeatures, layer.OutFeatures)
    {
        public override ScalarType WeightDtype => layer.ComputeDtype;

        public override Device Device => layer.State.Device;

        public override bool WeightIsCopy => true;

        public override Tensor ReadWeight() => layer.DequantizeWeight();

        public override Tensor? Bias => layer.Bias;

        public override void AddToWeight(Tensor delta) => layer.MergeDelta(delta);
    }
}
