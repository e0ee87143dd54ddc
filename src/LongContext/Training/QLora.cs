using LongContext.Lora;
using LongContext.Quantization;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// QLoRA as composition: a <see cref="LoraLinear"/> over a frozen <see cref="Linear4Bit"/>. The 4-bit layer is
/// dequantized on the fly in forward and backward; merging dequantizes, adds the LoRA delta and requantizes (lossy:
/// the merged weight carries the 4-bit rounding error of the new values, see <see cref="Linear4Bit.MergeDelta"/>).
/// </summary>
public static class QLora
{
    /// <summary>Describes a <see cref="Linear4Bit"/> for LoRA injection (null for any other module).</summary>
    /// <param name="module">A module of the tree.</param>
    public static LoraLinearBase? Resolve(nn.Module module)
        => module is Linear4Bit l4 ? new LoraLinearBase(l4.InFeatures, l4.OutFeatures, new LoraBaseWeight(l4.DequantizeWeight, l4.ReplaceWeight)) : null;

    /// <summary>Wraps one 4-bit linear in a LoRA layer (QLoRA's linear).</summary>
    /// <param name="layer">The frozen 4-bit base.</param>
    /// <param name="options">The adapter's hyper-parameters.</param>
    /// <param name="adapterName">The adapter's name.</param>
    public static LoraLinear Wrap(Linear4Bit layer, LoraOptions options, string adapterName = "default")
    {
        ArgumentNullException.ThrowIfNull(layer);
        LoraLinearBase d = Resolve(layer)!;
        return new LoraLinear(layer, d.InFeatures, d.OutFeatures, options, d.Weight, adapterName);
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
}
