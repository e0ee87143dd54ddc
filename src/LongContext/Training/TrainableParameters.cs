using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// The parameters a training loop updates: those the recipe (or the caller) left with <c>requires_grad</c>, in the
/// module's <c>named_parameters()</c> order. Select them after the model is on its device (<c>.to(device)</c>
/// replaces parameter objects) and after freezing, and build the optimizer from the result.
/// </summary>
public static class TrainableParameters
{
    /// <summary>Every parameter of <paramref name="module"/> that requires gradients.</summary>
    /// <param name="module">The model, already moved to its device and prepared (frozen base, trainable adapters).</param>
    /// <returns>The trainable parameters by name, in module order.</returns>
    /// <exception cref="ArgumentException">No parameter of the module requires gradients.</exception>
    public static IReadOnlyList<NamedParameter> Select(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        var result = new List<NamedParameter>();
        int total = 0;
        foreach (var (name, parameter) in module.named_parameters())
        {
            total++;
            if (parameter.requires_grad) result.Add(new NamedParameter(name, parameter));
        }
        if (result.Count == 0)
            throw new ArgumentException(
                $"none of the module's {total} parameters requires gradients; prepare the model (e.g. inject LoRA or mark parameters trainable) before selecting what to train.",
                nameof(module));
        return result;
    }
}
