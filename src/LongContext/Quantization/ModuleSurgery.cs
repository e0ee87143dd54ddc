using System.Collections;
using System.Reflection;
using TorchSharp.Modules;
using TorchSharp.Utils;
using Module = TorchSharp.torch.nn.Module;
using Tensor = TorchSharp.torch.Tensor;

namespace LongContext.Quantization;

/// <summary>
/// Replaces a child module or a parameter inside a TorchSharp module tree. TorchSharp keeps two views of a child:
/// the registration table (<c>_internal_submodules</c>, used by <c>named_modules</c>, <c>state_dict</c>, <c>to</c>)
/// and the C# field the parent's <c>forward</c> calls. Both must change, or the parent keeps running the old child.
/// </summary>
internal static class ModuleSurgery
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <summary>Replaces the registered child <paramref name="name"/> of <paramref name="parent"/> and every field or list slot holding it.</summary>
    public static void ReplaceChild(Module parent, string name, Module replacement)
    {
        var table = Table<Module>(parent, "_internal_submodules");
        if (!table.TryGetValue(name, out Module? old))
            throw new ArgumentException($"module '{parent.GetName()}' has no child named '{name}'.", nameof(name));
        int patched = PatchReferences(parent, old, replacement, name);
        table[name] = replacement;
        _ = patched;
    }

    /// <summary>Replaces the parameter <paramref name="name"/> registered directly on <paramref name="owner"/>.</summary>
    public static void ReplaceParameter(Module owner, string name, Parameter replacement)
    {
        // Built-in modules (Linear, Embedding, ...) expose settable properties that also update native state.
        PropertyInfo? property = owner.GetType().GetProperty(name, BindingFlags.Instance | BindingFlags.Public);
        if (property is not null && property.CanWrite && property.PropertyType.IsAssignableFrom(typeof(Parameter)))
        {
            property.SetValue(owner, replacement);
            return;
        }
        var table = Table<Parameter>(owner, "_internal_params");
        if (!table.TryGetValue(name, out Parameter? old))
            throw new ArgumentException($"module '{owner.GetName()}' has no parameter named '{name}'.", nameof(name));
        PatchReferences(owner, old, replacement, name);
        table[name] = replacement;
    }

    private static OrderedDict<string, T> Table<T>(Module module, string fieldName)
    {
        FieldInfo field = typeof(Module).GetField(fieldName, BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException($"TorchSharp's Module has no field '{fieldName}'; this TorchSharp version is not supported.");
        return (OrderedDict<string, T>)field.GetValue(module)!;
    }

    // Sets every instance field (in the whole class hierarchy below Module) and IList slot that holds 'old'.
    private static int PatchReferences(object owner, object old, object replacement, string name)
    {
        int count = 0;
        for (Type? type = owner.GetType(); type is not null && type != typeof(Module); type = type.BaseType)
        {
            foreach (FieldInfo field in type.GetFields(InstanceFields))
            {
                object? value = field.GetValue(owner);
                if (ReferenceEquals(value, old))
                {
                    if (!field.FieldType.IsInstanceOfType(replacement))
                        throw new InvalidOperationException(
                            $"cannot replace '{name}' of {owner.GetType().Name}: its field '{field.Name}' is declared as " +
                            $"{field.FieldType.Name}, which cannot hold a {replacement.GetType().Name}. Declare the field as " +
                            "Module<Tensor, Tensor> so the layer can be swapped.");
                    field.SetValue(owner, replacement);
                    count++;
                }
                else if (value is IList list && value is not Tensor)
                {
                    for (int i = 0; i < list.Count; i++)
                    {
                        if (!ReferenceEquals(list[i], old)) continue;
                        Type? element = list.GetType().IsArray ? list.GetType().GetElementType()
                            : list.GetType().GetGenericArguments().FirstOrDefault();
                        if (element is not null && !element.IsInstanceOfType(replacement))
                            throw new InvalidOperationException(
                                $"cannot replace '{name}' of {owner.GetType().Name}: list field '{field.Name}' holds {element.Name}, " +
                                $"which cannot hold a {replacement.GetType().Name}.");
                        list[i] = replacement;
                        count++;
                    }
                }
            }
        }
        return count;
    }
}
