using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>
/// TorchSharp's AdamW (PyTorch's update: decoupled decay <c>p *= 1 - lr*wd</c>, bias-corrected moments) over two
/// parameter groups: the parameters that decay and those that do not (<see cref="ParameterGroups"/>), with the
/// trainable parameters kept by name so that the optimizer state can be saved and restored by name.
/// </summary>
/// <remarks>
/// Build it after the model is on its device and prepared: TorchSharp's <c>Module.to(device)</c> replaces the
/// parameter objects, and an optimizer built before would update the old ones. Each group's learning rate is set by
/// <see cref="LearningRateSchedule.Apply"/> on <see cref="Optimizer"/>.
/// </remarks>
public sealed class GroupedAdamW : IDisposable
{
    private readonly TorchSharp.Modules.AdamW _optimizer;
    private readonly List<NamedParameter> _ordered;

    /// <summary>Creates the optimizer over <paramref name="parameters"/>.</summary>
    /// <param name="parameters">Trainable parameters by name (e.g. <see cref="TrainableParameters.Select"/>); names unique.</param>
    /// <param name="options">Hyper-parameters and decay rules.</param>
    /// <exception cref="ArgumentException">No parameters, a duplicate name, a parameter that does not require gradients, or
    /// <see cref="AdamWOptions.DecayRules"/> set with <see cref="AdamWOptions.WeightDecay"/> 0.</exception>
    public GroupedAdamW(IEnumerable<NamedParameter> parameters, AdamWOptions options)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        options.CheckSettingsUsed(nameof(options));
        var list = parameters.ToList();
        if (list.Count == 0) throw new ArgumentException("no parameters to optimize; expected at least one trainable parameter.", nameof(parameters));
        foreach (NamedParameter p in list)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(parameters));
            if (!p.Parameter.requires_grad)
                throw new ArgumentException($"parameter '{p.Name}' does not require gradients; pass only trainable parameters (TrainableParameters.Select).", nameof(parameters));
        }
        Options = options;
        (DecayGroup, NoDecayGroup) = ParameterGroups.Split(list, options.DecayRules);
        var groups = new List<TorchSharp.Modules.AdamW.ParamGroup>();
        if (DecayGroup.Count > 0) groups.Add(Group(DecayGroup, options, options.WeightDecay));
        if (NoDecayGroup.Count > 0) groups.Add(Group(NoDecayGroup, options, 0));
        _optimizer = new TorchSharp.Modules.AdamW(groups, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
        _ordered = [.. DecayGroup, .. NoDecayGroup];
    }

    /// <summary>Creates the optimizer over every parameter of <paramref name="module"/> that requires gradients.</summary>
    /// <param name="module">The prepared model, already on its device.</param>
    /// <param name="options">Hyper-parameters and decay rules.</param>
    public static GroupedAdamW ForModule(nn.Module module, AdamWOptions options) => new(TrainableParameters.Select(module), options);

    /// <summary>The hyper-parameters in force.</summary>
    public AdamWOptions Options { get; }

    /// <summary>Parameters updated with weight decay <see cref="AdamWOptions.WeightDecay"/> (first group when not empty).</summary>
    public IReadOnlyList<NamedParameter> DecayGroup { get; }

    /// <summary>Parameters updated without weight decay (the other group).</summary>
    public IReadOnlyList<NamedParameter> NoDecayGroup { get; }

    /// <summary>Every optimized parameter: the decay group, then the no-decay group.</summary>
    public IReadOnlyList<NamedParameter> Parameters => _ordered;

    /// <summary>The TorchSharp optimizer (its <c>ParamGroups</c> are what schedules set).</summary>
    public optim.Optimizer Optimizer => _optimizer;

    /// <summary>One AdamW update of every parameter that has a gradient.</summary>
    public void Step() => _optimizer.step();

    /// <summary>Drops every parameter's gradient (PyTorch's <c>zero_grad(set_to_none=True)</c>), freeing its memory.</summary>
    public void ZeroGrad()
    {
        foreach (NamedParameter p in _ordered) p.Parameter.grad = null;
    }

    /// <summary>The AdamW state of each parameter, in <see cref="Parameters"/> order (live objects: edit in place).</summary>
    internal IReadOnlyList<(NamedParameter Parameter, TorchSharp.Modules.AdamW.State State)> States()
    {
        var states = _optimizer.state_dict().State;
        if (states.Count != _ordered.Count)
            throw new InvalidOperationException($"the optimizer holds {states.Count} parameter states for {_ordered.Count} parameters; was a group added from outside?");
        return _ordered.Select((p, i) => (p, (TorchSharp.Modules.AdamW.State)states[i])).ToList();
    }

    /// <inheritdoc />
    public void Dispose() => _optimizer.Dispose();

    private static TorchSharp.Modules.AdamW.ParamGroup Group(IReadOnlyList<NamedParameter> members, AdamWOptions o, double weightDecay)
        => new(members.Select(m => m.Parameter).ToArray(), o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, weightDecay);
}
