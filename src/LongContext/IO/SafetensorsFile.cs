using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace LongContext.IO;

/// <summary>
/// Reads and writes <c>.safetensors</c> files (the format of HF transformers and peft checkpoints) through
/// TorchSharp.PyBridge, adding access to the header's <c>__metadata__</c> string map.
/// </summary>
public static class SafetensorsFile
{
    /// <summary>Loads every tensor of a file onto the CPU, keyed by name, in the stored dtype.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <param name="keys">When given, only these tensors are read.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static Dictionary<string, Tensor> Load(string path, IEnumerable<string>? keys = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' does not exist.", path);
        return Safetensors.LoadStateDict(path, keys?.ToList());
    }

    /// <summary>Reads the header's <c>__metadata__</c> map (empty when the file has none).</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using JsonDocument header = ReadHeader(path);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (header.RootElement.TryGetProperty("__metadata__", out JsonElement meta) && meta.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty p in meta.EnumerateObject())
                result[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        }
        return result;
    }

    /// <summary>Lists the tensor names and shapes stored in a file without reading the data.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    public static IReadOnlyDictionary<string, long[]> ReadShapes(string path)
    {
        using JsonDocument header = ReadHeader(path);
        var result = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (JsonProperty p in header.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            result[p.Name] = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        }
        return result;
    }

    /// <summary>
    /// Writes tensors to a file (CPU, contiguous copies are made where needed), replacing it if present. The header
    /// carries <c>__metadata__</c>: <paramref name="metadata"/> when given, else <c>{"format": "pt"}</c> as HF
    /// transformers and peft write it (transformers checks the format when it loads a checkpoint).
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="tensors">Tensors by name.</param>
    /// <param name="metadata">String map stored as the header's <c>__metadata__</c>.</param>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        string temp = full + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            using (var scope = NewDisposeScope())
            {
                var dict = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                foreach (var (name, t) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    dict[name] = t.detach().cpu().contiguous();
                using var stream = File.Create(temp);
                Safetensors.SaveStateDict(stream, dict, leaveOpen: true);
            }
            // TorchSharp.PyBridge writes the tensors and their index; re-emit its header with the metadata added,
            // padded with spaces to a multiple of 8 bytes as the reference implementation does. Data offsets are
            // relative to the end of the header, so the data block is copied unchanged.
            using var source = File.OpenRead(temp);
            JsonObject header = ReadHeaderNode(source, temp);
            var meta = new JsonObject();
            foreach (var (k, v) in metadata ?? new Dictionary<string, string> { ["format"] = "pt" })
                meta[k] = v;
            header.Remove("__metadata__");
            var ordered = new JsonObject { ["__metadata__"] = meta };
            foreach (var (k, v) in header.ToList())
            {
                header.Remove(k);
                ordered[k] = v;
            }
            byte[] json = Encoding.UTF8.GetBytes(ordered.ToJsonString());
            int padded = (json.Length + 7) / 8 * 8;
            using (var target = File.Create(full))
            {
                target.Write(BitConverter.GetBytes((ulong)padded));
                target.Write(json);
                for (int i = json.Length; i < padded; i++) target.WriteByte((byte)' ');
                source.CopyTo(target);
            }
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static JsonObject ReadHeaderNode(Stream stream, string path)
    {
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        ulong n = BitConverter.ToUInt64(len);
        if (n == 0 || n > 100_000_000 || (long)n > stream.Length - 8)
            throw new InvalidDataException($"'{path}' is not a safetensors file: header length {n} is out of range.");
        byte[] json = new byte[n];
        stream.ReadExactly(json);
        return JsonNode.Parse(Encoding.UTF8.GetString(json))?.AsObject()
            ?? throw new InvalidDataException($"'{path}' is not a safetensors file: the header is not a JSON object.");
    }

    private static JsonDocument ReadHeader(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        return JsonDocument.Parse(ReadHeaderNode(stream, path).ToJsonString());
    }
}
