using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using System.Text.Unicode;

namespace LongContext.IO;

/// <summary>
/// A safetensors header, parsed and validated by the format's rules as the reference implementation
/// (huggingface/safetensors, <c>SafeTensors::read_metadata</c> and <c>Metadata::validate</c>) checks them:
/// an 8-byte little-endian length of at most 100,000,000 bytes that lies within the file; UTF-8 JSON holding an
/// object whose entries are either <c>__metadata__</c> (null or a string-to-string object) or tensors with a known
/// <c>dtype</c>, a <c>shape</c> of non-negative integers and <c>data_offsets</c> [begin, end] with end - begin equal to
/// elements x element size; and entries that, sorted by offset, tile the data region exactly (no gap, no overlap,
/// nothing past the end of the file and nothing after the last tensor). Stricter than the reference: a tensor name
/// that appears twice is an error (the reference keeps one silently). Fields of an entry the reference ignores are
/// kept as warnings.
/// </summary>
internal sealed class SafetensorsHeader
{
    /// <summary>The format's limit on the header length.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private SafetensorsHeader(Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata, List<string> warnings, long headerBytes)
    {
        Entries = entries;
        Metadata = metadata;
        Warnings = warnings;
        HeaderBytes = headerBytes;
    }

    /// <summary>Tensor entries by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }

    /// <summary>The <c>__metadata__</c> map (empty when absent or null).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>What the reference accepts and ignores (unknown fields of an entry).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Length of the JSON header in bytes (the value of the first 8 bytes).</summary>
    public long HeaderBytes { get; }

    /// <summary>Offset of the data region in the file.</summary>
    public long DataStart => 8 + HeaderBytes;

    /// <summary>Reads and validates the header of an open file; allocates at most the header's length (which is within the file).</summary>
    /// <param name="file">The open file.</param>
    /// <param name="fileLength">The file's length in bytes.</param>
    /// <param name="path">The file's path, for messages.</param>
    /// <exception cref="InvalidDataException">Any rule of the format is broken (the message names the file and, where one is at fault, the tensor).</exception>
    public static SafetensorsHeader Read(SafeFileHandle file, long fileLength, string path)
    {
        if (fileLength < 8)
            throw Invalid(path, $"the file is {fileLength} bytes long, shorter than the 8-byte header length that starts every safetensors file");
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(file, 0, prefix, path, "the header length");
        ulong n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderBytes)
            throw Invalid(path, $"the header length {n} exceeds the format's limit of {MaxHeaderBytes} bytes");
        if ((long)n > fileLength - 8)
            throw Invalid(path, $"the header length {n} runs past the end of the file ({fileLength} bytes, so at most {fileLength - 8})");
        byte[] json = new byte[(int)n];
        ReadExactly(file, 8, json, path, "the header");
        return Parse(json, fileLength - 8 - (long)n, path);
    }

    /// <summary>Parses and validates header JSON against a data region of <paramref name="dataLength"/> bytes.</summary>
    public static SafetensorsHeader Parse(byte[] json, long dataLength, string path)
    {
        if (!Utf8.IsValid(json))
            throw Invalid(path, "the header is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"the header is not valid JSON ({e.Message})", e);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Invalid(path, $"the header must be a JSON object; got {Kind(root)}");
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var warnings = new List<string>();
            bool sawMetadata = false;
            foreach (JsonProperty p in root.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (sawMetadata) throw Invalid(path, "'__metadata__' appears twice");
                    sawMetadata = true;
                    ReadMetadata(p.Value, metadata, path);
                    continue;
                }
                if (entries.ContainsKey(p.Name))
                    throw Invalid(path, $"tensor '{Clip(p.Name)}' appears twice in the header");
                entries[p.Name] = ReadEntry(p.Name, p.Value, path, warnings);
            }
            CheckTiling(entries.Values, dataLength, path);
            return new SafetensorsHeader(entries, metadata, warnings, json.LongLength);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"'__metadata__' must be an object of strings; got {Kind(value)}");
        foreach (JsonProperty m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw Invalid(path, $"'__metadata__' entry '{Clip(m.Name)}' must be a string; got {Kind(m.Value)}");
            if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                throw Invalid(path, $"'__metadata__' entry '{Clip(m.Name)}' appears twice");
        }
    }

    private static SafetensorsEntry ReadEntry(string name, JsonElement value, string path, List<string> warnings)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"tensor '{Clip(name)}': the entry must be an object with dtype, shape and data_offsets; got {Kind(value)}");
        JsonElement? dtypeNode = null, shapeNode = null, offsetsNode = null;
        foreach (JsonProperty f in value.EnumerateObject())
        {
            switch (f.Name)
            {
                case "dtype": dtypeNode = Once(dtypeNode, f, name, path); break;
                case "shape": shapeNode = Once(shapeNode, f, name, path); break;
                case "data_offsets": offsetsNode = Once(offsetsNode, f, name, path); break;
                default: warnings.Add($"'{path}': tensor '{Clip(name)}': field '{Clip(f.Name)}' is not part of the format and is ignored."); break;
            }
        }
        if (dtypeNode is not { } dtypeElement || dtypeElement.ValueKind != JsonValueKind.String)
            throw Invalid(path, $"tensor '{Clip(name)}': 'dtype' must be a string; got {Describe(dtypeNode)}");
        string dtype = dtypeElement.GetString()!;
        if (!SafetensorsDtypes.TryGetBits(dtype, out int bits))
            throw Invalid(path, $"tensor '{Clip(name)}': unknown dtype '{Clip(dtype)}'; the format defines {SafetensorsDtypes.KnownNames}");
        long[] shape = Integers(shapeNode, name, "shape", path);
        long[] offsets = Integers(offsetsNode, name, "data_offsets", path);
        if (offsets.Length != 2)
            throw Invalid(path, $"tensor '{Clip(name)}': 'data_offsets' must be [begin, end]; got {offsets.Length} numbers");
        if (offsets[1] < offsets[0])
            throw Invalid(path, $"tensor '{Clip(name)}': data_offsets [{offsets[0]}, {offsets[1]}] end before they begin");
        long elements = 1;
        long byteCount;
        try
        {
            foreach (long d in shape) elements = checked(elements * d);
            long totalBits = checked(elements * bits);
            if (totalBits % 8 != 0)
                throw Invalid(path, $"tensor '{Clip(name)}': {elements} elements of {dtype} ({bits} bits each) do not fill whole bytes");
            byteCount = totalBits / 8;
        }
        catch (OverflowException)
        {
            throw Invalid(path, $"tensor '{Clip(name)}': shape [{string.Join(", ", shape)}] of {dtype} overflows a 64-bit byte count");
        }
        if (offsets[1] - offsets[0] != byteCount)
            throw Invalid(path,
                $"tensor '{Clip(name)}': shape [{string.Join(", ", shape)}] of {dtype} needs {byteCount} bytes but data_offsets [{offsets[0]}, {offsets[1]}] hold {offsets[1] - offsets[0]}");
        return new SafetensorsEntry(name, dtype, shape, offsets[0], offsets[1]);
    }

    private static void CheckTiling(IEnumerable<SafetensorsEntry> entries, long dataLength, string path)
    {
        long cursor = 0;
        string? previous = null;
        foreach (SafetensorsEntry e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ThenBy(e => e.Name, StringComparer.Ordinal))
        {
            if (e.End > dataLength)
                throw Invalid(path, $"tensor '{Clip(e.Name)}': data_offsets [{e.Begin}, {e.End}] run past the end of the file's data region ({dataLength} bytes)");
            if (e.Begin < cursor)
                throw Invalid(path, $"tensor '{Clip(e.Name)}': data_offsets [{e.Begin}, {e.End}] overlap tensor '{Clip(previous!)}', which ends at {cursor}");
            if (e.Begin > cursor)
                throw Invalid(path, $"tensor '{Clip(e.Name)}': data_offsets [{e.Begin}, {e.End}] leave a gap of {e.Begin - cursor} bytes after {(previous is null ? "the header" : $"tensor '{Clip(previous!)}'")}");
            cursor = e.End;
            previous = e.Name;
        }
        if (cursor != dataLength)
            throw Invalid(path, $"the tensors cover {cursor} bytes of data but the file holds {dataLength} after the header ({dataLength - cursor} bytes belong to no tensor)");
    }

    private static JsonElement Once(JsonElement? seen, JsonProperty f, string name, string path)
        => seen is null ? f.Value : throw Invalid(path, $"tensor '{Clip(name)}': field '{Clip(f.Name)}' appears twice");

    private static long[] Integers(JsonElement? node, string name, string field, string path)
    {
        if (node is not { ValueKind: JsonValueKind.Array } array)
            throw Invalid(path, $"tensor '{Clip(name)}': '{field}' must be a list of non-negative integers; got {Describe(node)}");
        var result = new long[array.GetArrayLength()];
        int i = 0;
        foreach (JsonElement e in array.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < 0)
                throw Invalid(path, $"tensor '{Clip(name)}': '{field}'[{i}] must be a non-negative integer below 2^63; got {Clip(e.GetRawText())}");
            result[i++] = v;
        }
        return result;
    }

    private static void ReadExactly(SafeFileHandle file, long offset, Span<byte> buffer, string path, string what)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = RandomAccess.Read(file, buffer[done..], offset + done);
            if (n <= 0) throw Invalid(path, $"the file ended while reading {what} (it changed while being read?)");
            done += n;
        }
    }

    private static string Describe(JsonElement? node) => node is { } e ? $"{Kind(e)} {Clip(e.GetRawText())}" : "nothing (the field is missing)";

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };

    internal static string Clip(string text) => text.Length <= 80 ? text : text[..77] + "...";

    internal static InvalidDataException Invalid(string path, string message, Exception? inner = null)
        => new($"'{path}' is not a valid safetensors file: {message}.", inner);
}
