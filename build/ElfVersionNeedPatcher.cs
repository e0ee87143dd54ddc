// Shared by the MSBuild inline task in LongContext.NativeCompat.targets and by the tests.
#nullable enable
// Keeps to the BCL only: RoslynCodeTaskFactory compiles it at build time.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace LongContext.Build
{
    /// <summary>
    /// Marks one symbol-version requirement of an ELF64 little-endian shared object as weak
    /// (<c>VER_FLG_WEAK</c> in <c>vna_flags</c> of its <c>.gnu.version_r</c> entry), so the dynamic loader accepts a
    /// host library that lacks that version. Used for TorchSharp's <c>libLibTorchSharp.so</c>, whose only reference to
    /// <c>GLIBCXX_3.4.32</c> is <c>std::ios_base_library_init()</c>, a link-time anchor that is never called.
    /// </summary>
    public static class ElfVersionNeedPatcher
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;

        /// <summary>Lists the version names a shared object requires, with whether each is already weak.</summary>
        public static IReadOnlyList<KeyValuePair<string, bool>> ListRequirements(byte[] elf)
        {
            var result = new List<KeyValuePair<string, bool>>();
            Walk(elf, (name, flagsOffset) =>
            {
                ushort flags = BitConverter.ToUInt16(elf, flagsOffset);
                result.Add(new KeyValuePair<string, bool>(name, (flags & VerFlgWeak) != 0));
            });
            return result;
        }

        /// <summary>
        /// Sets <c>VER_FLG_WEAK</c> on every requirement named <paramref name="versionName"/>.
        /// Returns the number of entries changed (0 when absent or already weak).
        /// </summary>
        public static int MarkWeak(byte[] elf, string versionName)
        {
            int changed = 0;
            Walk(elf, (name, flagsOffset) =>
            {
                if (name != versionName) return;
                ushort flags = BitConverter.ToUInt16(elf, flagsOffset);
                if ((flags & VerFlgWeak) != 0) return;
                flags |= VerFlgWeak;
                elf[flagsOffset] = (byte)(flags & 0xff);
                elf[flagsOffset + 1] = (byte)(flags >> 8);
                changed++;
            });
            return changed;
        }

        /// <summary>True when a libstdc++ image defines the given symbol version (its name appears in the image).</summary>
        public static bool ImageMentions(byte[] image, string versionName)
        {
            byte[] needle = Encoding.ASCII.GetBytes(versionName + "\0");
            for (int i = 0; i + needle.Length <= image.Length; i++)
            {
                if (image[i] != needle[0]) continue;
                int j = 1;
                while (j < needle.Length && image[i + j] == needle[j]) j++;
                if (j == needle.Length && (i == 0 || image[i - 1] == 0)) return true;
            }
            return false;
        }

        private static void Walk(byte[] elf, Action<string, int> visit)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException("only ELF64 little-endian files are supported");
            long shoff = BitConverter.ToInt64(elf, 0x28);
            int shentsize = BitConverter.ToUInt16(elf, 0x3A);
            int shnum = BitConverter.ToUInt16(elf, 0x3C);
            for (int s = 0; s < shnum; s++)
            {
                long sh = shoff + (long)s * shentsize;
                uint type = BitConverter.ToUInt32(elf, (int)(sh + 4));
                if (type != ShtGnuVerneed) continue;
                long offset = BitConverter.ToInt64(elf, (int)(sh + 0x18));
                uint link = BitConverter.ToUInt32(elf, (int)(sh + 0x28));
                long strSh = shoff + (long)link * shentsize;
                long strOffset = BitConverter.ToInt64(elf, (int)(strSh + 0x18));
                long vn = offset;
                while (true)
                {
                    ushort cnt = BitConverter.ToUInt16(elf, (int)(vn + 2));
                    uint aux = BitConverter.ToUInt32(elf, (int)(vn + 8));
                    uint next = BitConverter.ToUInt32(elf, (int)(vn + 12));
                    long va = vn + aux;
                    for (int a = 0; a < cnt; a++)
                    {
                        uint nameOff = BitConverter.ToUInt32(elf, (int)(va + 8));
                        uint vnaNext = BitConverter.ToUInt32(elf, (int)(va + 12));
                        visit(ReadCString(elf, strOffset + nameOff), (int)(va + 4));
                        if (vnaNext == 0) break;
                        va += vnaNext;
                    }
                    if (next == 0) break;
                    vn += next;
                }
            }
        }

        private static string ReadCString(byte[] data, long start)
        {
            long end = start;
            while (data[end] != 0) end++;
            return Encoding.ASCII.GetString(data, (int)start, (int)(end - start));
        }
    }
}

#if !LONGCONTEXT_NO_MSBUILD_TASK
namespace LongContext.Build
{
    /// <summary>
    /// MSBuild task: in the given output folder, rewrites each <c>libLibTorchSharp.so</c> whose host lacks the
    /// <c>GLIBCXX_3.4.32</c> symbol version so that requirement is weak. Files are replaced (never edited in place,
    /// so a hard link into the NuGet cache is never written through) and keep their timestamp, so incremental copies
    /// stay incremental.
    /// </summary>
    public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>Folder searched recursively for libLibTorchSharp.so.</summary>
        [Microsoft.Build.Framework.Required]
        public string Directory { get; set; } = "";

        /// <summary>auto (patch only when the host's libstdc++ lacks the version), true (always), false (never).</summary>
        public string Mode { get; set; } = "auto";

        /// <summary>Version requirement to relax.</summary>
        public string VersionName { get; set; } = "GLIBCXX_3.4.32";

        /// <summary>Runs the task.</summary>
        public override bool Execute()
        {
            if (!System.IO.Directory.Exists(Directory)) return true;
            string mode = (Mode ?? "auto").Trim().ToLowerInvariant();
            if (mode == "false") return true;
            if (mode != "auto" && mode != "true")
            {
                Log.LogError("LongContextPatchLibTorchSharp must be auto, true or false; got '{0}'.", Mode);
                return false;
            }
            if (mode == "auto")
            {
                string? host = FindHostLibStdCxx();
                if (host == null)
                {
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "LongContext: no host libstdc++.so.6 found; libLibTorchSharp.so left as is.");
                    return true;
                }
                if (ElfVersionNeedPatcher.ImageMentions(File.ReadAllBytes(host), VersionName))
                {
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "LongContext: {0} provides {1}; libLibTorchSharp.so left as is.", host, VersionName);
                    return true;
                }
            }
            foreach (string path in System.IO.Directory.EnumerateFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories))
            {
                byte[] image = File.ReadAllBytes(path);
                int changed = ElfVersionNeedPatcher.MarkWeak(image, VersionName);
                if (changed == 0) continue;
                DateTime stamp = File.GetLastWriteTimeUtc(path);
                string temp = path + ".longcontext-tmp";
                File.WriteAllBytes(temp, image);
                File.Delete(path);
                File.Move(temp, path);
                File.SetLastWriteTimeUtc(path, stamp);
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High, "LongContext: marked {0} weak in {1} (host libstdc++ lacks it).", VersionName, path);
            }
            return true;
        }

        private static string? FindHostLibStdCxx()
        {
            var dirs = new List<string>();
            string? ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld.Split(':'));
            dirs.AddRange(new[] { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib" });
            foreach (string d in dirs)
            {
                if (string.IsNullOrEmpty(d)) continue;
                string p = Path.Combine(d, "libstdc++.so.6");
                if (File.Exists(p)) return p;
            }
            return null;
        }
    }
}
#endif
