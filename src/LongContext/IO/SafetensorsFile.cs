using static TorchSharp.torch;

namespace LongContext.IO;

/// <summary>
/// Reads and writes <c>.safetensors</c> files (the format of HF transformers and peft checkpoints). Every read
/// validates the header first, by the format's rules as the reference implementation (huggingface/safetensors)
/// checks them, before any tensor memory is allocated: an 8-byte little-endian header length of at most 100,000,000
/// bytes that lies within the file; a UTF-8 JSON object of tensor entries (plus an optional <c>__metadata__</c>
/// string map), each with a known dtype, non-negative dimensions and <c>data_offsets</c> whose length equals
/// elements x element size; and entries that tile the data region exactly (no gap, no overlap, nothing past the end).
/// A broken rule is an <see cref="InvalidDataException"/> naming the file and the tensor. Dtypes read:
/// F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL; the format's others (U16, U32, U64, F8_*, F6_*, F4, C64) are
/// validated but reading them throws <see cref="NotSupportedException"/>. Every write is atomic (a temporary file in
/// the same folder, flushed, renamed over the target).
/// </summary>
public static class SafetensorsFile
{
    /// <summary>Loads tensors of a file onto the CPU, keyed by name, in the stored dtype.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <param name="keys">When given, only these tensors are read.</param>
    /// <returns>New tensors (the caller disposes them).</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file breaks a rule of the format, or lacks a requested key.</exception>
    /// <exception cref="NotSupportedException">A tensor to read has a dtype TorchSharp cannot hold.</exception>
    public static Dictionary<string, Tensor> Load(string path, IEnumerable<string>? keys = null)
    {
        using SafetensorsReader reader = SafetensorsReader.Open(path);
        List<string> names = keys?.Distinct(StringComparer.Ordinal).ToList() ?? reader.Entries.Keys.ToList();
        foreach (string name in names)
        {
            if (!reader.Entries.TryGetValue(name, out SafetensorsEntry? entry))
                throw new InvalidDataException($"'{path}' holds no tensor '{name}'.");
            if (entry.ScalarType is null)
                throw new NotSupportedException(
                    $"'{path}': tensor '{name}' has dtype {entry.Dtype}, which TorchSharp cannot hold; supported: {SafetensorsDtypes.SupportedNames}.");
        }
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (string name in names) result[name] = reader.Read(name);
        }
        catch
        {
            foreach (Tensor t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>Reads the header's <c>__metadata__</c> map (empty when the file has none).</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file breaks a rule of the format.</exception>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using SafetensorsReader reader = SafetensorsReader.Open(path);
        return reader.Metadata;
    }

    /// <summary>Lists the tensor names and shapes stored in a file without reading the data.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file breaks a rule of the format.</exception>
    public static IReadOnlyDictionary<string, long[]> ReadShapes(string path)
    {
        using SafetensorsReader reader = SafetensorsReader.Open(path);
        return reader.Entries.ToDictionary(kv => kv.Key, kv => kv.Value.Shape, StringComparer.Ordinal);
    }

    /// <summary>
    /// Writes tensors to a file atomically, replacing it if present (a failure leaves the previous file intact). The
    /// layout is the reference writer's (tensors ordered by dtype then name, header padded to 8 bytes); the header
    /// carries <c>__metadata__</c>: <paramref name="metadata"/> when given, else <c>{"format": "pt"}</c> as HF
    /// transformers and peft write it (transformers checks the format when it loads a checkpoint). Tensors on any
    /// device and of any layout are copied to the host one at a time.
    /// </summary>
    /// <param name="path">Destination file (its folder is created if absent).</param>
    /// <param name="tensors">Tensors by name.</param>
    /// <param name="metadata">String map stored as the header's <c>__metadata__</c>.</param>
    /// <exception cref="NotSupportedException">A tensor's dtype has no safetensors name (complex, quantized).</exception>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => Save(path, tensors, metadata, wrap: null);

    /// <summary><see cref="Save(string, IReadOnlyDictionary{string, Tensor}, IReadOnlyDictionary{string, string}?)"/>
    /// with the temporary file's stream wrapped (tests inject failures through <paramref name="wrap"/>).</summary>
    internal static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata, Func<Stream, Stream>? wrap)
    {
        using StagedFile staged = Stage(path, tensors, metadata, wrap);
        staged.Commit();
    }

    /// <summary>Writes the file beside its target without renaming it yet (see <see cref="AtomicFile.Stage"/>).</summary>
    internal static StagedFile Stage(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, Func<Stream, Stream>? wrap = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        IReadOnlyDictionary<string, string> meta = metadata ?? new Dictionary<string, string> { ["format"] = "pt" };
        return AtomicFile.Stage(path, stream => SafetensorsWriter.Write(stream, tensors, meta), wrap);
    }
}
