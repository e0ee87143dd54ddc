namespace LongContext.Lora;

/// <summary>
/// How a new adapter's A and B matrices are initialised: peft's <c>init_lora_weights</c> (its
/// <c>reset_lora_parameters</c>), written back to <c>adapter_config.json</c> as read.
/// </summary>
public enum LoraInit
{
    /// <summary>
    /// peft's default (<c>init_lora_weights=true</c>): for Linear, A kaiming-uniform with a = sqrt(5) and B zeros; for
    /// Embedding, A zeros and B standard normal. The adapter starts as no change.
    /// </summary>
    KaimingUniform,
    /// <summary>
    /// peft's <c>"gaussian"</c>: for Linear, A normal with std 1/r and B zeros; for Embedding the same as
    /// <see cref="KaimingUniform"/> (A zeros, B standard normal: peft applies the gaussian rule to Linear only).
    /// </summary>
    Gaussian,
    /// <summary>
    /// peft's <c>init_lora_weights=false</c>: no reset, so the adapter starts as a random change. For Linear, A and B
    /// as TorchSharp/PyTorch initialise a Linear's weight (kaiming-uniform with a = sqrt(5) over each matrix's fan-in);
    /// for Embedding, A and B standard normal.
    /// </summary>
    Random,
}
