using System.Text.RegularExpressions;

namespace LongContext.Lora;

/// <summary>Module-name matching rules (pure functions).</summary>
internal static class TargetMatcher
{
    /// <summary>peft's target rule: the full name equals the target or ends with "." + target.</summary>
    public static bool SuffixMatch(string moduleName, string target)
        => moduleName == target || moduleName.EndsWith("." + target, StringComparison.Ordinal);

    /// <summary>Whether a module is a LoRA target under the options (the module type is checked by the caller).</summary>
    public static bool IsTarget(string moduleName, bool isLinear, LoraOptions options)
    {
        if (options.TargetRegex is { } pattern)
            return Regex.IsMatch(moduleName, $"^(?:{pattern})$");
        IReadOnlyList<string> targets = options.ResolvedTargetModules;
        if (targets.Count == 1 && targets[0] == LoraOptions.AllLinear)
            return isLinear && LastSegment(moduleName) != "lm_head";
        return targets.Any(t => SuffixMatch(moduleName, t));
    }

    /// <summary>
    /// The rule for modules trained in full: peft's suffix rule, or (LongLoRA's <c>embed,norm</c>) the name's last
    /// segment contains the target, for modules that hold parameters directly.
    /// </summary>
    public static bool IsTrainableTarget(string moduleName, bool holdsParameters, string target)
        => SuffixMatch(moduleName, target) || (holdsParameters && LastSegment(moduleName).Contains(target, StringComparison.Ordinal));

    public static string LastSegment(string name) => name[(name.LastIndexOf('.') + 1)..];

    /// <summary>
    /// The shortest names that select exactly <paramref name="chosen"/> among <paramref name="all"/> under
    /// <paramref name="matches"/>: a last segment where it selects nothing else, the full name otherwise. Sorted.
    /// </summary>
    public static List<string> Compact(IReadOnlyCollection<string> chosen, IReadOnlyCollection<string> all, Func<string, string, bool> matches)
    {
        var set = new HashSet<string>(chosen, StringComparer.Ordinal);
        var result = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string name in chosen)
        {
            string seg = LastSegment(name);
            bool exact = all.Where(n => matches(n, seg)).All(set.Contains);
            result.Add(exact ? seg : name);
        }
        return result.ToList();
    }
}
