namespace LongContext.Lora;

/// <summary>What <see cref="LoraInjector.Inject"/> or <see cref="PeftAdapter.Load"/> did to a module tree.</summary>
/// <param name="AdapterName">The adapter added.</param>
/// <param name="WrappedModules">Full names of the modules that now carry the adapter, in tree order.</param>
/// <param name="TrainableModules">Full names of the modules trained in full (modules_to_save).</param>
/// <param name="Parameters">Parameter totals afterwards.</param>
public sealed record LoraInjectionReport(string AdapterName, IReadOnlyList<string> WrappedModules,
                                         IReadOnlyList<string> TrainableModules, ParameterCount Parameters)
{
    /// <summary>A short multi-line summary naming the wrapped modules and the parameter totals.</summary>
    public override string ToString()
        => $"adapter '{AdapterName}': {WrappedModules.Count} modules wrapped ({string.Join(", ", WrappedModules)})"
         + (TrainableModules.Count > 0 ? $"; trained in full: {string.Join(", ", TrainableModules)}" : "")
         + Environment.NewLine + Parameters;
}
