namespace LongContext.GpuCheck;

/// <summary>
/// Finds the fixture root: the given folder, else <c>fixtures/</c> beside the program or one level up (the published
/// bundle's layout), else the test project's <c>tests/LongContext.Tests/Fixtures</c> above the working folder.
/// </summary>
internal static class FixtureRoot
{
    /// <summary>The fixture root in force.</summary>
    /// <exception cref="DirectoryNotFoundException">The given folder does not exist, or none was found.</exception>
    public static string Locate(string? given)
    {
        if (!string.IsNullOrWhiteSpace(given))
            return Directory.Exists(given) ? Path.GetFullPath(given) : throw new DirectoryNotFoundException($"fixture root '{given}' is not a folder.");
        var candidates = new List<string>
        {
            Path.Combine(AppContext.BaseDirectory, "fixtures"),
            Path.Combine(AppContext.BaseDirectory, "..", "fixtures"),
        };
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
            candidates.Add(Path.Combine(dir.FullName, "tests", "LongContext.Tests", "Fixtures"));
        return candidates.Where(Directory.Exists).Select(Path.GetFullPath).FirstOrDefault()
            ?? throw new DirectoryNotFoundException($"no fixture root found (looked in {string.Join(", ", candidates.Take(3))}, ...); pass --fixtures DIR.");
    }
}
