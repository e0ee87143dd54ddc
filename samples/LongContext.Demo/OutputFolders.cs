using System.Globalization;
using LongContext.IO;

namespace LongContext.Demo;

/// <summary>
/// The folders the commands write to. A command writes only into a new folder, an empty one, or one that holds
/// nothing but the entries it writes itself (a previous run's), so a mistyped <c>--output</c> never overwrites or
/// removes a user's files; the hidden temporary files a killed save leaves (<see cref="AtomicFile.IsTemporaryFile"/>) are not counted.
/// </summary>
public static class OutputFolders
{
    /// <summary>
    /// What is wrong with <paramref name="path"/> as the folder of <paramref name="option"/> (a file; a folder holding
    /// other entries than <paramref name="ownEntries"/>; a folder that cannot be created or written), or null when
    /// the command may write there. Nothing is left behind: writing is tried with a hidden file that is removed.
    /// </summary>
    /// <param name="option">The option, for the message (<c>--output</c>).</param>
    /// <param name="path">The folder given.</param>
    /// <param name="ownEntries">The names of the files and folders the command writes in it.</param>
    /// <param name="marker">
    /// An entry every folder the command wrote holds (a base's <c>manifest.json</c>, a training run's log): a folder
    /// that is not empty must hold it, so that a user's folder made only of like-named files is not taken for a
    /// previous run's. Null: any folder of <paramref name="ownEntries"/> only.
    /// </param>
    /// <param name="expected">What the folder must be, for the message; null for the usual wording.</param>
    public static string? Problem(string option, string path, IReadOnlyCollection<string> ownEntries, string? marker = null, string? expected = null)
    {
        ArgumentNullException.ThrowIfNull(ownEntries);
        expected ??= $"a new or empty folder, or one this command wrote before{(marker is null ? "" : $" (with {marker})")}";
        if (string.IsNullOrWhiteSpace(path)) return $"{option} must be {expected}; got '{path}'.";
        if (File.Exists(path)) return $"{option} must be {expected}; '{path}' is a file.";
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            string[] entries = Directory.EnumerateFileSystemEntries(full).Select(Path.GetFileName).OfType<string>()
                .Where(n => !AtomicFile.IsTemporaryFile(n)).Order(StringComparer.Ordinal).ToArray();
            string[] foreign = entries.Where(n => !ownEntries.Contains(n)).ToArray();
            string Listed(string[] names) => string.Join(", ", names.Take(3)) + (names.Length > 3 ? string.Create(CultureInfo.InvariantCulture, $" and {names.Length - 3} more") : "");
            if (foreign.Length > 0) return $"{option} must be {expected}; '{path}' holds {Listed(foreign)}.";
            if (entries.Length > 0 && marker is not null && !entries.Contains(marker)) return $"{option} must be {expected}; '{path}' holds {Listed(entries)} but no {marker}.";
            return Unwritable(option, path, full);
        }
        string? existing = Path.GetDirectoryName(full);
        while (existing is not null && !Directory.Exists(existing) && !File.Exists(existing)) existing = Path.GetDirectoryName(existing);
        if (existing is null) return $"{option}: '{path}' cannot be created (no part of it exists).";
        if (File.Exists(existing)) return $"{option}: '{path}' cannot be created: '{existing}' is a file.";
        return Unwritable(option, path, existing);
    }

    /// <summary>
    /// Removes the entries of <paramref name="folder"/> named in <paramref name="ownEntries"/> (a previous run's files),
    /// and nothing else.
    /// </summary>
    /// <param name="folder">The folder; nothing happens when it does not exist.</param>
    /// <param name="ownEntries">The names a run writes there.</param>
    public static void Clear(string folder, IEnumerable<string> ownEntries)
    {
        ArgumentNullException.ThrowIfNull(ownEntries);
        if (!Directory.Exists(folder)) return;
        foreach (string name in ownEntries)
        {
            string entry = Path.Combine(folder, name);
            if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
            else if (File.Exists(entry)) File.Delete(entry);
        }
    }

    private static string? Unwritable(string option, string path, string folder)
    {
        string probe = Path.Combine(folder, $".write-check.{Guid.NewGuid():N}.tmp");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"{option}: '{path}' cannot be written ({e.Message}).";
        }
    }
}
