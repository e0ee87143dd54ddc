using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>Counts a module tree's parameters (each shared parameter once).</summary>
public static class ParameterCounter
{
    /// <summary>Totals over <c>root.parameters()</c>.</summary>
    /// <param name="root">Any module tree.</param>
    public static ParameterCount Count(nn.Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        long total = 0, trainable = 0;
        foreach (var p in root.parameters())
        {
            total += p.numel();
            if (p.requires_grad) trainable += p.numel();
        }
        return new ParameterCount(total, trainable);
    }
}
