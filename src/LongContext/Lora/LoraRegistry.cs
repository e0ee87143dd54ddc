using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>Remembers, per model root, which modules were marked trainable in full (saved as modules_to_save).</summary>
internal static class LoraRegistry
{
    private static readonly ConditionalWeakTable<nn.Module, SortedSet<string>> Trainable = new();

    public static SortedSet<string> TrainableModules(nn.Module root) => Trainable.GetOrCreateValue(root);
}
