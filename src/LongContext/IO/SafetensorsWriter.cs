using System.Text.Encodings.Web;
using System.Text.Json;
using static TorchSharp.torch;

namespace LongContext.IO;

/// <summary>
/// Writes the safetensors layout to a stream as the reference writer (huggingface/safetensors <c>serialize</c>) does:
/// tensors ordered by dtype (widest alignment first) then name, data packed back to back, the compact JSON header
/// (<c>__metadata__</c> first) padded with spaces to a multiple of 8 bytes. Tensors are copied to the host one at a
/// time, so writing needs no memory beyond one tensor.
/// </summary>
internal static class SafetensorsWriter
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    /// <summary>Writes tensors and metadata to <paramref name="stream"/>.</summary>
    /// <exception cref="ArgumentException">A name or metadata value is null, or a tensor is null.</exception>
    /// <exception cref="NotSupportedException">A tensor's dtype has no safetensors name.</exception>
    public static void Write(Stream stream, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata, int chunkBytes = SafetensorsReader.DefaultChunkBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(metadata);
        if (!BitConverter.IsLittleEndian)
            throw new NotSupportedException("safetensors data is little-endian; this library writes it on little-endian hosts only.");
        var order = new List<(string Name, Tensor Tensor, string Dtype, long Bytes)>(tensors.Count);
        foreach (var (name, tensor) in tensors)
        {
            if (tensor is null) throw new ArgumentException($"tensor '{name}' is null.", nameof(tensors));
            if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved by the format and cannot name a tensor.", nameof(tensors));
            order.Add((name, tensor, SafetensorsDtypes.NameOf(tensor.dtype, name), tensor.numel() * tensor.ElementSize));
        }
        order.Sort((a, b) =>
        {
            int byType = SafetensorsDtypes.Rank(b.Dtype).CompareTo(SafetensorsDtypes.Rank(a.Dtype));
            return byType != 0 ? byType : string.CompareOrdinal(a.Name, b.Name);
        });

        var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json, JsonOptions))
        {
            w.WriteStartObject();
            if (metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    if (v is null) throw new ArgumentException($"metadata value '{k}' is null.", nameof(metadata));
                    w.WriteString(k, v);
                }
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor, dtype, bytes) in order)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (long d in tensor.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        long padded = (json.Length + 7) / 8 * 8;
        Span<byte> length = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        stream.Write(length);
        json.Position = 0;
        json.CopyTo(stream);
        for (long i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');

        foreach (var (_, tensor, _, bytes) in order)
        {
            if (bytes == 0) continue;
            using Tensor host = tensor.detach().cpu().contiguous();
            using Tensor flat = host.reshape(-1);
            long elementSize = host.ElementSize;
            long perChunk = Math.Max(1, chunkBytes / elementSize);
            long elements = flat.shape[0];
            for (long first = 0; first < elements; first += perChunk)
            {
                using Tensor part = flat.narrow(0, first, Math.Min(perChunk, elements - first));
                stream.Write(part.bytes);
            }
        }
    }
}
