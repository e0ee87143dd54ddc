using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// A module that describes some of its own children for LoRA, e.g. a model whose embedding was built with a padding
/// index that TorchSharp's <c>Embedding</c> does not expose. <see cref="LoraInjector.Inject"/> (and so
/// <see cref="PeftAdapter.Load"/>) asks every such module of the tree after the caller's resolver and before
/// <see cref="LoraBaseDescriptor.ForBuiltIn"/>.
/// </summary>
public interface ILoraBaseDescriber
{
    /// <summary>The descriptor LoRA should wrap <paramref name="module"/> with, or null to leave it to the other rules.</summary>
    /// <param name="module">A module of the tree.</param>
    LoraBaseDescriptor? DescribeForLora(nn.Module module);
}
