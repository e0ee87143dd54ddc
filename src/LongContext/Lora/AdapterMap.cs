using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// A named-children holder like peft's <c>ModuleDict</c>/<c>ParameterDict</c> keyed by adapter name, so that the
/// state-dict keys read <c>lora_A.default.weight</c> or <c>lora_embedding_A.default</c> as peft's do.
/// </summary>
internal sealed class AdapterMap : nn.Module
{
    public AdapterMap() : base(nameof(AdapterMap)) { }

    /// <summary>Registers a child module under an adapter name.</summary>
    public void AddModule(string adapterName, nn.Module module) => register_module(adapterName, module);

    /// <summary>Registers a parameter under an adapter name.</summary>
    public void AddParameter(string adapterName, Parameter parameter) => register_parameter(adapterName, parameter);

    /// <summary>The child module registered under an adapter name.</summary>
    public nn.Module Module(string adapterName) => _internal_submodules[adapterName];

    /// <summary>The parameter registered under an adapter name.</summary>
    public Parameter Parameter(string adapterName) => _internal_params[adapterName];

    protected override void RegisterComponents() { }
}
