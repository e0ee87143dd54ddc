using LongContext.Build;
using LongContext.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Build;

[Trait(Category.Name, Category.Build)]
public sealed class NativeLoadTests
{
    [Fact]
    public void TorchSharp_LoadsAndComputes_AMatrixProductAgainstTheClosedForm()
    {
        using var a = tensor(new double[] { 1, 2, 3, 4 }, 2, 2);
        using var b = tensor(new double[] { 5, 6, 7, 8 }, 2, 2);
        using var c = a.matmul(b);
        double[] got = c.data<double>().ToArray();
        Assert.Equal(new double[] { 19, 22, 43, 50 }, got);
    }

    [Fact]
    public void Patcher_MarksOnlyTheGlibcxx3432RequirementWeak_InTorchSharpsNativeLibrary()
    {
        string? so = Directory.EnumerateFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault();
        Assert.NotNull(so);
        byte[] image = File.ReadAllBytes(so!);
        var before = ElfVersionNeedPatcher.ListRequirements(image);
        Assert.Contains(before, r => r.Key == "GLIBCXX_3.4.32");

        ElfVersionNeedPatcher.MarkWeak(image, "GLIBCXX_3.4.32");
        var after = ElfVersionNeedPatcher.ListRequirements(image);

        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].Key, after[i].Key);
            bool expectWeak = before[i].Value || before[i].Key == "GLIBCXX_3.4.32";
            Assert.Equal(expectWeak, after[i].Value);
        }
        Assert.Equal(0, ElfVersionNeedPatcher.MarkWeak(image, "GLIBCXX_3.4.32"));
    }

    [Fact]
    public void Patcher_RejectsFilesThatAreNotElf()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersionNeedPatcher.ListRequirements(new byte[128]));
    }

    [Fact]
    public void Patcher_FindsVersionNamesOnlyAsWholeNulTerminatedStrings()
    {
        byte[] image = System.Text.Encoding.ASCII.GetBytes("\0GLIBCXX_3.4.320\0xGLIBCXX_3.4.31\0GLIBCXX_3.4.30\0");
        Assert.True(ElfVersionNeedPatcher.ImageMentions(image, "GLIBCXX_3.4.30"));
        Assert.False(ElfVersionNeedPatcher.ImageMentions(image, "GLIBCXX_3.4.32"));
        Assert.False(ElfVersionNeedPatcher.ImageMentions(image, "GLIBCXX_3.4.31"));
    }
}
