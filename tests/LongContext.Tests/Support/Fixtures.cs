namespace LongContext.Tests.Support;

/// <summary>
/// Locates reference data. Defaults to the <c>Fixtures</c> folder copied beside the test assembly; the environment
/// variable <c>LONGCONTEXT_FIXTURES</c> points the same data-driven tests at another fixture root of the same schema.
/// </summary>
public static class Fixtures
{
    /// <summary>Name of the environment variable that overrides the fixture root.</summary>
    public const string EnvironmentVariable = "LONGCONTEXT_FIXTURES";

    /// <summary>The fixture root in force.</summary>
    public static string Root
    {
        get
        {
            string? overridden = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(overridden))
            {
                if (!Directory.Exists(overridden))
                    throw new DirectoryNotFoundException($"{EnvironmentVariable}='{overridden}' is not a folder.");
                return Path.GetFullPath(overridden);
            }
            return Path.Combine(AppContext.BaseDirectory, "Fixtures");
        }
    }

    /// <summary>A sub-folder of the root (e.g. <c>rope</c>); absent folders yield an empty path list from <see cref="Files"/>.</summary>
    public static string Folder(string name) => Path.Combine(Root, name);

    /// <summary>Files in a fixture sub-folder matching a pattern, sorted, relative names for readable test case names.</summary>
    public static IEnumerable<string> Files(string folder, string pattern)
    {
        string dir = Folder(folder);
        if (!Directory.Exists(dir)) return Array.Empty<string>();
        return Directory.EnumerateFiles(dir, pattern).Select(Path.GetFileName).OfType<string>().OrderBy(n => n, StringComparer.Ordinal);
    }

    /// <summary>xunit member data: one row per file in a fixture sub-folder.</summary>
    public static TheoryData<string> FileCases(string folder, string pattern)
    {
        var data = new TheoryData<string>();
        foreach (string f in Files(folder, pattern)) data.Add(f);
        return data;
    }
}
