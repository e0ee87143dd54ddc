namespace LongContext.Lora;

/// <summary>Which biases train alongside the LoRA matrices (peft's <c>bias</c> option).</summary>
public enum LoraBias
{
    /// <summary>No bias trains (peft <c>"none"</c>).</summary>
    None,
    /// <summary>Every bias of the model trains and is saved with the adapter (peft <c>"all"</c>).</summary>
    All,
    /// <summary>Only the biases of the LoRA-wrapped layers train and are saved (peft <c>"lora_only"</c>).</summary>
    LoraOnly,
}
