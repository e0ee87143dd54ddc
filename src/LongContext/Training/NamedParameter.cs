using TorchSharp.Modules;

namespace LongContext.Training;

/// <summary>A trainable parameter and its full name in the module tree (<c>model.layers.0.self_attn.q_proj.lora_A.default.weight</c>).</summary>
/// <param name="Name">The name <c>named_parameters()</c> gives it; training state is saved and matched by it.</param>
/// <param name="Parameter">The module's own registered parameter object.</param>
public sealed record NamedParameter(string Name, Parameter Parameter);
