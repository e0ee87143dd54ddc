using System.Collections;
using System.Reflection;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace LongContext;

/// <summary>
/// Finds and replaces modules and parameters inside a TorchSharp module tree, so that the parent's forward uses the
/// replacement: the parent's registry entry is overwritten in place (order kept) and every field or list slot of the
/// parent that held the old object is pointed at the new one. Shared by LoRA injection and 4-bit quantization.
/// A field whose declared type cannot hold the replacement (e.g. declared as <c>Linear</c>) is an error naming it:
/// declare swappable layers as <c>Module&lt;Tensor, Tensor&gt;</c>. Children of containers that keep them in their own
/// lists (TorchSharp's <c>Sequential</c>) are replaced in that list.
/// </summary>
internal static class ModuleTree
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <summary>Finds a module by its full <c>named_modules()</c> name ("" is the root).</summary>
    public static nn.Module Find(nn.Module root, string fullName)
    {
        if (fullName.Length == 0) return root;
        foreach (var (name, m) in root.named_modules())
            if (name == fullName) return m;
        throw new ArgumentException($"module '{fullName}' does not exist in the tree.", nameof(fullName));
    }

    /// <summary>Puts <paramref name="replacement"/> where the module named <paramref name="fullName"/> was.</summary>
    public static void Replace(nn.Module root, string fullName, nn.Module replacement)
    {
        int dot = fullName.LastIndexOf('.');
        ReplaceChild(Find(root, dot < 0 ? "" : fullName[..dot]), fullName[(dot + 1)..], replacement, fullName);
    }

    /// <summary>
    /// Throws what <see cref="Replace"/> would throw for a replacement of type <paramref name="replacementType"/>,
    /// changing nothing: callers that replace several modules check every one first, so a refused one leaves the tree
    /// as it was.
    /// </summary>
    public static void CheckReplace(nn.Module root, string fullName, Type replacementType)
    {
        int dot = fullName.LastIndexOf('.');
        CheckReplaceChild(Find(root, dot < 0 ? "" : fullName[..dot]), fullName[(dot + 1)..], replacementType, fullName);
    }

    /// <summary>The check of <see cref="ReplaceChild"/> alone (see <see cref="CheckReplace"/>).</summary>
    public static void CheckReplaceChild(nn.Module parent, string name, Type replacementType, string? displayName = null)
        => _ = Prepare(parent, name, replacementType, displayName ?? name);

    /// <summary>Replaces the registered child <paramref name="name"/> of <paramref name="parent"/>.</summary>
    public static void ReplaceChild(nn.Module parent, string name, nn.Module replacement, string? displayName = null)
    {
        displayName ??= name;
        var (table, registered, old) = Prepare(parent, name, replacement.GetType(), displayName);
        PatchReferences(parent, old, replacement, replacement.GetType(), displayName, dryRun: false);
        if (registered) table[name] = replacement;
    }

    /// <summary>Finds the child and checks that every reference to it can take the replacement type; changes nothing.</summary>
    private static (OrderedDict<string, nn.Module> Table, bool Registered, nn.Module Old) Prepare(nn.Module parent, string name, Type replacementType, string displayName)
    {
        if (parent is IFixedChildren fixedParent)
            throw new InvalidOperationException($"cannot replace '{displayName}': its parent is a {parent.GetType().Name}, {fixedParent.FixedChildrenReason}");
        var table = Table<nn.Module>(parent, "_internal_submodules");
        bool registered = table.TryGetValue(name, out nn.Module? old);
        // Containers such as Sequential keep their children in their own lists (named_children reads those), outside
        // the registry: the list slot is then the only reference, and patching it is the whole replacement.
        old ??= parent.named_children().Where(c => c.name == name).Select(c => c.module).FirstOrDefault()
            ?? throw new ArgumentException($"module '{displayName}' is not a registered child of {parent.GetType().Name}.", nameof(name));
        int patched = PatchReferences(parent, old, null, replacementType, displayName, dryRun: true);
        if (patched == 0 && (!registered || parent.GetType().Namespace?.StartsWith("TorchSharp", StringComparison.Ordinal) == true))
            throw new NotSupportedException(
                $"cannot replace '{displayName}': its parent is a {parent.GetType().Name}, which keeps its children outside fields; wrap the module before adding it there.");
        return (table, registered, old);
    }

    /// <summary>Replaces the parameter <paramref name="name"/> registered directly on <paramref name="owner"/>.</summary>
    public static void ReplaceParameter(nn.Module owner, string name, TorchSharp.Modules.Parameter replacement)
    {
        // Built-in modules (Linear, Embedding, ...) expose settable properties that also update native state.
        PropertyInfo? property = owner.GetType().GetProperty(name, BindingFlags.Instance | BindingFlags.Public);
        if (property is not null && property.CanWrite && property.PropertyType.IsAssignableFrom(typeof(TorchSharp.Modules.Parameter)))
        {
            property.SetValue(owner, replacement);
            return;
        }
        var table = Table<TorchSharp.Modules.Parameter>(owner, "_internal_params");
        if (!table.TryGetValue(name, out TorchSharp.Modules.Parameter? old))
            throw new ArgumentException($"module {owner.GetType().Name} has no parameter named '{name}'.", nameof(name));
        PatchReferences(owner, old, replacement, replacement.GetType(), name, dryRun: false);
        table[name] = replacement;
    }

    private static OrderedDict<string, T> Table<T>(nn.Module module, string fieldName)
    {
        FieldInfo field = typeof(nn.Module).GetField(fieldName, BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new MissingFieldException($"TorchSharp's Module has no field '{fieldName}'; this TorchSharp version is not supported.");
        return (OrderedDict<string, T>)field.GetValue(module)!;
    }

    // Counts (dryRun) or sets every instance field, in the class hierarchy below Module, and every IList slot that
    // holds 'old'; throws before anything changes when a slot's declared type cannot hold the replacement.
    private static int PatchReferences(object owner, object old, object? replacement, Type replacementType, string name, bool dryRun)
    {
        int count = 0;
        for (Type? type = owner.GetType(); type is not null && type != typeof(nn.Module); type = type.BaseType)
        {
            foreach (FieldInfo field in type.GetFields(InstanceFields))
            {
                object? value = field.GetValue(owner);
                if (ReferenceEquals(value, old))
                {
                    if (!field.FieldType.IsAssignableFrom(replacementType))
                        throw new InvalidOperationException(
                            $"cannot replace '{name}': field '{field.Name}' of {owner.GetType().Name} is declared as " +
                            $"{field.FieldType.Name}, which cannot hold a {replacementType.Name}; declare it as Module<Tensor, Tensor>.");
                    if (!dryRun) field.SetValue(owner, replacement);
                    count++;
                }
                else if (value is IList list && value is not Tensor)
                {
                    for (int i = 0; i < list.Count; i++)
                    {
                        if (!ReferenceEquals(list[i], old)) continue;
                        Type? element = list.GetType().IsArray ? list.GetType().GetElementType()
                            : list.GetType().GetGenericArguments().FirstOrDefault();
                        if (element is not null && !element.IsAssignableFrom(replacementType))
                            throw new InvalidOperationException(
                                $"cannot replace '{name}': list field '{field.Name}' of {owner.GetType().Name} holds {element.Name}, " +
                                $"which cannot hold a {replacementType.Name}.");
                        if (!dryRun) list[i] = replacement;
                        count++;
                    }
                }
            }
        }
        return count;
    }
}

/// <summary>
/// A module whose registered children are reached through other objects than its own fields (a LoRA layer reaches
/// its base through a descriptor resolved when it was built): <see cref="ModuleTree"/> refuses to replace them, since
/// the module would keep running the old child.
/// </summary>
internal interface IFixedChildren
{
    /// <summary>Why, and what to do instead, completing "its parent is a X, ..." (e.g. "which reaches it through ...; do Y.").</summary>
    string FixedChildrenReason { get; }
}
