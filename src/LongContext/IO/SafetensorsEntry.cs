using static TorchSharp.torch;

namespace LongContext.IO;

/// <summary>One tensor's entry in a validated safetensors header.</summary>
/// <param name="Name">The tensor's name (its key in the header).</param>
/// <param name="Dtype">The format's dtype name (<c>F32</c>, <c>BF16</c>, <c>U8</c>, ...).</param>
/// <param name="Shape">The shape (empty for a scalar).</param>
/// <param name="Begin">First byte of the data, relative to the start of the data region (after the header).</param>
/// <param name="End">One past the last byte of the data, relative to the start of the data region.</param>
public sealed record SafetensorsEntry(string Name, string Dtype, long[] Shape, long Begin, long End)
{
    /// <summary>Bytes of data (<c>End - Begin</c>, which validation made equal to elements x element size).</summary>
    public long ByteCount => End - Begin;

    /// <summary>The TorchSharp dtype, or null when TorchSharp cannot hold this dtype (reading it throws <see cref="NotSupportedException"/>).</summary>
    public ScalarType? ScalarType => SafetensorsDtypes.ToScalarType(Dtype);
}
