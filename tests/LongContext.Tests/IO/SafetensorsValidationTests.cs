using System.Buffers.Binary;
using System.Text;
using LongContext.IO;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.IO;

/// <summary>
/// Hand-built files that break one rule of the format each (the rules as huggingface/safetensors' reader checks
/// them), and the edge cases the format allows.
/// </summary>
[Trait(Category.Name, Category.Build)]
public sealed class SafetensorsValidationTests
{
    private const string A = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    private const string B = "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}";

    private static byte[] Data(int n) => Enumerable.Range(0, n).Select(i => (byte)i).ToArray();

    private static byte[] Header(string json, int dataBytes = 12) => RawSafetensors.Build(json, Data(dataBytes));

    private static byte[] LengthPrefix(ulong length, int trailing)
    {
        var bytes = new byte[8 + trailing];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
        for (int i = 8; i < bytes.Length; i++) bytes[i] = (byte)'{';
        return bytes;
    }

    /// <summary>Case name -> (file bytes, the tensor the message must name or null, a fragment of the message).</summary>
    private static readonly Dictionary<string, (Func<byte[]> Bytes, string? Tensor, string Fragment)> Malformed = new()
    {
        ["empty file"] = (() => [], null, "shorter than the 8-byte header length"),
        ["seven bytes"] = (() => new byte[7], null, "shorter than the 8-byte header length"),
        ["header length above 100 MB"] = (() => LengthPrefix(100_000_001, 16), null, "exceeds the format's limit"),
        ["header length 2^64-1"] = (() => LengthPrefix(ulong.MaxValue, 16), null, "exceeds the format's limit"),
        ["header length past the end of the file"] = (() => LengthPrefix(1000, 50), null, "runs past the end of the file"),
        ["header length zero"] = (() => LengthPrefix(0, 0), null, "not valid JSON"),
        ["header not UTF-8"] = (() => RawSafetensors.Build("{\"\u00e9\":1}", []).Select((b, i) => i == 10 ? (byte)0xFF : b).ToArray(), null, "not valid UTF-8"),
        ["header not JSON"] = (() => Header("{\"a\":{\"dtype\"", 0), null, "not valid JSON"),
        ["header a list"] = (() => Header("[]", 0), null, "must be a JSON object"),
        ["metadata value not a string"] = (() => Header("{\"__metadata__\":{\"k\":1}," + A + "," + B + "}"), null, "'__metadata__' entry 'k' must be a string"),
        ["metadata a list"] = (() => Header("{\"__metadata__\":[]," + A + "," + B + "}"), null, "'__metadata__' must be an object"),
        ["entry not an object"] = (() => Header("{\"a\":5}", 0), "a", "the entry must be an object"),
        ["missing dtype"] = (() => Header("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "a", "'dtype' must be a string"),
        ["unknown dtype"] = (() => Header("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "a", "unknown dtype 'F33'"),
        ["missing shape"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "a", "'shape' must be a list"),
        ["negative dimension"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "a", "'shape'[0] must be a non-negative integer"),
        ["fractional dimension"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8), "a", "'shape'[0] must be a non-negative integer"),
        ["dimension 2^64-1"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615],\"data_offsets\":[0,8]}}", 8), "a", "below 2^63"),
        ["dimension a string"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8), "a", "'shape'[0]"),
        ["shape overflows"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]}}", 8), "a", "overflows"),
        ["shape disagrees with the byte range"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "a", "needs 12 bytes"),
        ["dtype disagrees with the byte range"] = (() => Header("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "a", "needs 16 bytes"),
        ["missing data_offsets"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "a", "'data_offsets' must be a list"),
        ["three data_offsets"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8), "a", "must be [begin, end]"),
        ["reversed data_offsets"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8), "a", "end before they begin"),
        ["negative data offset"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8), "a", "'data_offsets'[0]"),
        ["two tensors share bytes"] = (() => Header("{" + A + ",\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", 8), "b", "overlap tensor 'a'"),
        ["gap between tensors"] = (() => Header("{" + A + ",\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[9,13]}}", 13), "b", "leave a gap of 1 bytes after tensor 'a'"),
        ["gap before the first tensor"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "a", "gap of 4 bytes after the header"),
        ["range past the end of the file"] = (() => Header("{" + A + "," + B + "}", 10), "b", "run past the end of the file's data region"),
        ["bytes after the last tensor"] = (() => Header("{" + A + "," + B + "}", 16), null, "4 bytes belong to no tensor"),
        ["a tensor name twice"] = (() => Header("{" + A + "," + A + "}", 8), "a", "appears twice"),
        ["a field twice"] = (() => Header("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "a", "field 'dtype' appears twice"),
        ["F4 elements that do not fill a byte"] = (() => Header("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 1), "a", "do not fill whole bytes"),
    };

    public static TheoryData<string> MalformedCases() => new(Malformed.Keys.Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Load_FileBreakingARule_ThrowsInvalidDataNamingFileAndTensor(string name)
    {
        var (bytes, tensor, fragment) = Malformed[name];
        using var folder = new TempFolder();
        string path = folder.File("bad.safetensors");
        File.WriteAllBytes(path, bytes());
        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains(fragment, ex.Message);
        if (tensor is not null) Assert.Contains($"tensor '{tensor}'", ex.Message);
        // The same validation guards the header-only readers.
        Assert.Throws<InvalidDataException>(() => SafetensorsFile.ReadShapes(path));
    }

    [Theory]
    [InlineData("U16", 2)]
    [InlineData("U32", 4)]
    [InlineData("U64", 8)]
    [InlineData("F8_E4M3", 1)]
    [InlineData("F8_E5M2", 1)]
    [InlineData("C64", 8)]
    public void Load_DtypeTorchSharpCannotHold_ThrowsNotSupportedNamingIt(string dtype, int size)
    {
        using var folder = new TempFolder();
        string path = folder.File("u.safetensors");
        File.WriteAllBytes(path, Header($"{{\"q\":{{\"dtype\":\"{dtype}\",\"shape\":[3],\"data_offsets\":[0,{3 * size}]}}}}", 3 * size));
        var ex = Assert.Throws<NotSupportedException>(() => SafetensorsFile.Load(path));
        Assert.Contains(dtype, ex.Message);
        Assert.Contains("'q'", ex.Message);
        Assert.Contains(path, ex.Message);
        Assert.Equal(new long[] { 3 }, SafetensorsFile.ReadShapes(path)["q"]); // the header itself is valid
    }

    [Fact]
    public void Load_BoolHoldingAByteOtherThanZeroOrOne_ThrowsInvalidData()
    {
        using var folder = new TempFolder();
        string path = folder.File("b.safetensors");
        File.WriteAllBytes(path, RawSafetensors.Build("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}", [1, 2, 0]));
        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
        Assert.Contains("'m'", ex.Message);
    }

    [Fact]
    public void Load_NoTensors_GivesAnEmptyMap()
    {
        using var folder = new TempFolder();
        string path = folder.File("e.safetensors");
        File.WriteAllBytes(path, RawSafetensors.Build("{}", []));
        Assert.Empty(SafetensorsFile.Load(path));
    }

    [Fact]
    public void Load_ZeroSizedAndScalarTensorsInAnyHeaderOrder_ReadTheirBytes()
    {
        using var folder = new TempFolder();
        string path = folder.File("z.safetensors");
        // Entries listed out of offset order, a zero-sized tensor between two others, a scalar, unpadded header.
        byte[] data = new byte[12];
        BitConverter.GetBytes(1.5f).CopyTo(data, 0);
        BitConverter.GetBytes(-2.0f).CopyTo(data, 4);
        BitConverter.GetBytes(7).CopyTo(data, 8);
        string header = "{\"s\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[8,12]},\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]},"
                        + "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":null}";
        File.WriteAllBytes(path, RawSafetensors.Build(header, data, pad: false));
        var t = SafetensorsFile.Load(path);
        Assert.Equal(new[] { 1.5f, -2.0f }, t["v"].data<float>().ToArray());
        Assert.Equal(new long[] { 0, 5 }, t["z"].shape);
        Assert.Equal(Array.Empty<long>(), t["s"].shape);
        Assert.Equal(7, t["s"].item<int>());
        Assert.Empty(SafetensorsFile.ReadMetadata(path));
    }

    [Fact]
    public void Open_EntryFieldOutsideTheFormat_IsAcceptedAndReportedAsAWarning()
    {
        using var folder = new TempFolder();
        string path = folder.File("w.safetensors");
        File.WriteAllBytes(path, Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"note\":\"x\"}}", 8));
        using var reader = SafetensorsReader.Open(path);
        string warning = Assert.Single(reader.Warnings);
        Assert.Contains("'note'", warning);
        Assert.Contains("tensor 'a'", warning);
        using var a = reader.Read("a");
        Assert.Equal(new long[] { 2 }, a.shape);
    }

    [Fact]
    public void Load_TensorNameOfAMegabyte_ClipsItInTheMessage()
    {
        using var folder = new TempFolder();
        string path = folder.File("long.safetensors");
        string name = new('n', 1 << 20);
        File.WriteAllBytes(path, Header($"{{\"{name}\":{{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}}}", 8));
        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
        Assert.True(ex.Message.Length < 1000, $"message of {ex.Message.Length} chars");
        Assert.Contains("needs 12 bytes", ex.Message);
    }

    [Fact]
    public void Load_UnicodeNamesAndMetadata_RoundTrip()
    {
        using var folder = new TempFolder();
        string path = folder.File("u.safetensors");
        using var t = ones(2);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["poids.é\"\\/+<"] = t }, new Dictionary<string, string> { ["note"] = "ü\n\t" });
        Assert.True(SafetensorsFile.Load(path).ContainsKey("poids.é\"\\/+<"));
        Assert.Equal("ü\n\t", SafetensorsFile.ReadMetadata(path)["note"]);
        Assert.Contains("poids.é", Encoding.UTF8.GetString(File.ReadAllBytes(path))); // not \u-escaped, as the reference writes it
    }
}
