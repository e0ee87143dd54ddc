using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.IO;

/// <summary>
/// An open <c>.safetensors</c> file whose header has been validated (see <see cref="SafetensorsFile"/> for the rules)
/// before any tensor memory is allocated. Tensors are read one at a time, each straight from the file into its
/// destination, so reading a checkpoint needs host memory of the destination plus at most one tensor.
/// </summary>
public sealed class SafetensorsReader : IDisposable
{
    /// <summary>Bytes moved per read call (a tensor is read in pieces of at most this size).</summary>
    internal const int DefaultChunkBytes = 64 << 20;

    private readonly SafeFileHandle _file;
    private readonly SafetensorsHeader _header;
    private readonly long _fileLength;
    private readonly int _chunkBytes;

    private SafetensorsReader(string path, SafeFileHandle file, SafetensorsHeader header, long fileLength, int chunkBytes)
    {
        Path = path;
        _file = file;
        _header = header;
        _fileLength = fileLength;
        _chunkBytes = chunkBytes;
    }

    /// <summary>The file's path as given.</summary>
    public string Path { get; }

    /// <summary>The tensors' entries by name (dtype, shape, byte range).</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries => _header.Entries;

    /// <summary>The header's <c>__metadata__</c> string map (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _header.Metadata;

    /// <summary>What the file holds that the format's reference reader accepts and ignores (unknown entry fields).</summary>
    public IReadOnlyList<string> Warnings => _header.Warnings;

    /// <summary>Opens a file and validates its header.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file breaks a rule of the format (the message names the file and the tensor).</exception>
    public static SafetensorsReader Open(string path) => Open(path, DefaultChunkBytes);

    /// <summary>Opens a file reading tensors in pieces of <paramref name="chunkBytes"/> (tests use small pieces).</summary>
    internal static SafetensorsReader Open(string path, int chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 8);
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' does not exist.", path);
        if (!BitConverter.IsLittleEndian)
            throw new NotSupportedException("safetensors data is little-endian; this library reads it on little-endian hosts only.");
        SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            long length = RandomAccess.GetLength(file);
            var header = SafetensorsHeader.Read(file, length, path);
            return new SafetensorsReader(path, file, header, length, chunkBytes);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Reads one tensor into a new CPU tensor of its stored dtype and shape.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>A new tensor (the caller disposes it).</returns>
    /// <exception cref="InvalidDataException">The file holds no such tensor, or it changed since it was opened.</exception>
    /// <exception cref="NotSupportedException">The tensor's dtype has no TorchSharp counterpart (e.g. U16, F8_E4M3).</exception>
    public Tensor Read(string name)
    {
        SafetensorsEntry entry = Entry(name);
        ScalarType type = Supported(entry);
        if (type == ScalarType.Bool) return ReadBool(entry);
        Tensor result = empty(entry.Shape, type);
        try
        {
            Fill(entry, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads one tensor into an existing tensor of the same shape (e.g. a model parameter), converting the dtype and
    /// moving it to the destination's device as needed. A CPU, contiguous destination of the stored dtype is filled
    /// straight from the file; otherwise one temporary tensor of the stored dtype is used.
    /// </summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="destination">The tensor to overwrite (autograd is not recorded).</param>
    /// <exception cref="InvalidDataException">The file holds no such tensor, its shape differs from the destination's,
    /// or the file changed since it was opened.</exception>
    /// <exception cref="NotSupportedException">The tensor's dtype has no TorchSharp counterpart.</exception>
    public void ReadInto(string name, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        SafetensorsEntry entry = Entry(name);
        if (!entry.Shape.SequenceEqual(destination.shape))
            throw new InvalidDataException(
                $"'{Path}': tensor '{SafetensorsHeader.Clip(name)}' has shape [{string.Join(", ", entry.Shape)}]; the destination has [{string.Join(", ", destination.shape)}].");
        ScalarType type = Supported(entry);
        using var noGrad = no_grad();
        if (type != ScalarType.Bool && destination.dtype == type && destination.device_type == DeviceType.CPU && destination.is_contiguous())
        {
            Fill(entry, destination);
            return;
        }
        using Tensor staged = Read(name);
        destination.copy_(staged);
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file.Dispose();

    private SafetensorsEntry Entry(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ObjectDisposedException.ThrowIf(_file.IsClosed, this);
        return Entries.TryGetValue(name, out SafetensorsEntry? entry)
            ? entry
            : throw new InvalidDataException($"'{Path}' holds no tensor '{SafetensorsHeader.Clip(name)}'.");
    }

    private ScalarType Supported(SafetensorsEntry entry) => entry.ScalarType
        ?? throw new NotSupportedException(
            $"'{Path}': tensor '{SafetensorsHeader.Clip(entry.Name)}' has dtype {entry.Dtype}, which TorchSharp cannot hold; supported: {SafetensorsDtypes.SupportedNames}.");

    /// <summary>BOOL bytes must be 0 or 1 (any other byte is not a boolean); read as U8, check, convert.</summary>
    private Tensor ReadBool(SafetensorsEntry entry)
    {
        using Tensor bytes = empty(entry.Shape, ScalarType.Byte);
        Fill(entry, bytes);
        if (bytes.numel() > 0)
        {
            using Tensor largest = bytes.max();
            if (largest.item<byte>() > 1)
                throw new InvalidDataException($"'{Path}': tensor '{SafetensorsHeader.Clip(entry.Name)}' is BOOL but holds bytes other than 0 and 1.");
        }
        return bytes.to(ScalarType.Bool);
    }

    /// <summary>Copies the entry's bytes from the file into a CPU, contiguous tensor of the same byte size.</summary>
    private void Fill(SafetensorsEntry entry, Tensor target)
    {
        if (entry.ByteCount == 0) return;
        if (_header.DataStart + entry.End > _fileLength)
            throw new InvalidDataException($"'{Path}': tensor '{SafetensorsHeader.Clip(entry.Name)}' lies past the end of the file.");
        long elementSize = target.ElementSize;
        using Tensor flat = target.reshape(-1);
        long perChunk = Math.Max(1, _chunkBytes / elementSize);
        long elements = flat.shape[0];
        for (long first = 0; first < elements; first += perChunk)
        {
            long count = Math.Min(perChunk, elements - first);
            using Tensor part = flat.narrow(0, first, count);
            Span<byte> span = part.bytes;
            long offset = _header.DataStart + entry.Begin + first * elementSize;
            int done = 0;
            while (done < span.Length)
            {
                int n = RandomAccess.Read(_file, span[done..], offset + done);
                if (n <= 0)
                    throw new InvalidDataException($"'{Path}': the file ended while reading tensor '{SafetensorsHeader.Clip(entry.Name)}' (it changed after it was opened?).");
                done += n;
            }
        }
    }
}
