namespace LongContext.Lora;

/// <summary>How a new adapter's A and B matrices are initialised.</summary>
public enum LoraInit
{
    /// <summary>
    /// peft's default (<c>init_lora_weights=True</c>): for Linear, A kaiming-uniform with a = sqrt(5) and B zeros;
    /// for Embedding, A zeros and B standard normal. The adapter starts as the identity change.
    /// </summary>
    KaimingUniform,
    /// <summary>peft's <c>"gaussian"</c>: A normal with std 1/r, B zeros (for Embedding as well).</summary>
    Gaussian,
    /// <summary>A and B zeros; for adapters whose weights are loaded next.</summary>
    Zeros,
}
