using System.Globalization;

namespace LongContext.Lora;

/// <summary>Parameter totals of a model, as peft's <c>print_trainable_parameters</c> reports them.</summary>
/// <param name="Total">Elements in all parameters.</param>
/// <param name="Trainable">Elements in parameters that require gradients.</param>
public sealed record ParameterCount(long Total, long Trainable)
{
    /// <summary>100 · Trainable / Total (0 for an empty model).</summary>
    public double TrainablePercent => Total == 0 ? 0 : 100.0 * Trainable / Total;

    /// <summary>peft's wording: <c>trainable params: T || all params: A || trainable%: P</c> (digits grouped by commas, whatever the culture).</summary>
    public override string ToString()
        => string.Create(CultureInfo.InvariantCulture, $"trainable params: {Trainable:N0} || all params: {Total:N0} || trainable%: {TrainablePercent:F4}");
}
