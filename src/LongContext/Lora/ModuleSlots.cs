using System.Reflection;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace LongContext.Lora;

/// <summary>
/// Replaces a child module inside a TorchSharp module tree so that the parent's forward calls the replacement:
/// the parent's registry entry is overwritten in place (order kept) and every field of the parent that held the old
/// child is pointed at the new one. A field whose declared type cannot hold the replacement (e.g. declared as
/// <c>Linear</c>) is an error: declare such fields as <c>Module&lt;Tensor, Tensor&gt;</c>.
/// </summary>
internal static class ModuleSlots
{
    private static readonly FieldInfo Submodules = typeof(nn.Module).GetField("_internal_submodules", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp's Module no longer has _internal_submodules; module replacement needs updating.");

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
        string parentName = dot < 0 ? "" : fullName[..dot];
        string child = fullName[(dot + 1)..];
        var parent = Find(root, parentName);
        var dict = (OrderedDict<string, nn.Module>)Submodules.GetValue(parent)!;
        if (!dict.TryGetValue(child, out var old))
            throw new ArgumentException($"module '{fullName}' is not a registered child of '{parentName}'.", nameof(fullName));

        var fields = new List<FieldInfo>();
        for (var t = parent.GetType(); t is not null && t != typeof(nn.Module); t = t.BaseType)
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                if (!f.FieldType.IsValueType && ReferenceEquals(f.GetValue(parent), old)) fields.Add(f);

        foreach (var f in fields)
        {
            if (!f.FieldType.IsInstanceOfType(replacement))
                throw new InvalidOperationException(
                    $"cannot replace '{fullName}': field '{f.Name}' of {parent.GetType().Name} is declared as {f.FieldType.Name}, which cannot hold a {replacement.GetType().Name}; declare it as Module<Tensor, Tensor>.");
        }
        if (fields.Count == 0 && parent.GetType().Namespace?.StartsWith("TorchSharp", StringComparison.Ordinal) == true)
            throw new NotSupportedException(
                $"cannot replace '{fullName}': its parent is a {parent.GetType().Name}, which keeps its children outside fields; wrap the module before adding it there.");

        foreach (var f in fields) f.SetValue(parent, replacement);
        dict[child] = replacement;
    }
}
