using LongContext.IO;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.IO;

/// <summary>
/// A write that fails after part of its bytes (injected through the stream wrapper <see cref="AtomicFile"/> takes)
/// leaves the previous file byte for byte, or no file, and no temporary file behind.
/// </summary>
[Trait(Category.Name, Category.Build)]
public sealed class AtomicWriteTests
{
    private static Dictionary<string, Tensor> NewTensors() => new()
    {
        ["w"] = arange(4096, dtype: float32).reshape(64, 64),
        ["b"] = ones(64, dtype: bfloat16),
    };

    /// <summary>Failure points: before the first byte, inside the length, inside the header, inside the data, one byte short.</summary>
    public static TheoryData<string, long> FailurePoints() => new()
    {
        { "before the first byte", 0 },
        { "inside the header length", 5 },
        { "inside the header JSON", 40 },
        { "inside the tensor data", 9000 },
        { "one byte short", -1 },
    };

    private static long Resolve(long failAfter, long total) => failAfter >= 0 ? failAfter : total + failAfter;

    [Theory]
    [MemberData(nameof(FailurePoints))]
    public void SafetensorsSave_FailingMidway_LeavesThePreviousFileAndNoTemporary(string point, long failAfter)
    {
        using var folder = new TempFolder();
        string path = folder.File("model.safetensors");
        using var scope = NewDisposeScope();
        using (var old = zeros(3)) SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["old"] = old });
        byte[] before = File.ReadAllBytes(path);
        var tensors = NewTensors();
        long total = MeasureSize(tensors);

        var ex = Assert.Throws<IOException>(() =>
            SafetensorsFile.Save(path, tensors, null, s => new FailingStream(s, Resolve(failAfter, total))));
        Assert.Contains("injected", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["model.safetensors"], folder.Names());
        Assert.True(SafetensorsFile.Load(path).ContainsKey("old"), point);
    }

    [Theory]
    [MemberData(nameof(FailurePoints))]
    public void SafetensorsSave_FailingMidwayWithNoPreviousFile_LeavesNoFile(string point, long failAfter)
    {
        using var folder = new TempFolder();
        string path = folder.File("new.safetensors");
        using var scope = NewDisposeScope();
        var tensors = NewTensors();
        long total = MeasureSize(tensors);
        Assert.Throws<IOException>(() => SafetensorsFile.Save(path, tensors, null, s => new FailingStream(s, Resolve(failAfter, total))));
        Assert.True(folder.Names().Length == 0, point);
    }

    [Fact]
    public void WriteAllText_FailingMidway_LeavesThePreviousText()
    {
        using var folder = new TempFolder();
        string path = folder.File("config.json");
        File.WriteAllText(path, "{\"old\": true}");
        string text = "{\"new\": " + new string('1', 5000) + "}";
        Assert.Throws<IOException>(() => AtomicFile.WriteAllText(path, text, s => new FailingStream(s, 2048)));
        Assert.Equal("{\"old\": true}", File.ReadAllText(path));
        Assert.Equal(["config.json"], folder.Names());
        AtomicFile.WriteAllText(path, text);
        Assert.Equal(text, File.ReadAllText(path));
        Assert.Equal(["config.json"], folder.Names());
    }

    [Fact]
    public void PeftConfigWrite_ReplacesTheFileWholeAndLeavesNoTemporary()
    {
        using var folder = new TempFolder();
        string path = folder.File(PeftAdapterConfigJson.FileName);
        File.WriteAllText(path, new string('x', 100_000)); // longer than the new content: nothing of it may remain
        new PeftAdapterConfigJson { R = 4, TargetModules = System.Text.Json.Nodes.JsonValue.Create("all-linear") }.Write(path);
        Assert.Equal(4, PeftAdapterConfigJson.Read(path).R);
        Assert.Equal([PeftAdapterConfigJson.FileName], folder.Names());
    }

    private static long MeasureSize(Dictionary<string, Tensor> tensors)
    {
        using var ms = new MemoryStream();
        SafetensorsWriter.Write(ms, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return ms.Length;
    }
}
