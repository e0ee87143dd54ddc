using System.Buffers.Binary;
using System.Text;

namespace LongContext.Tests.IO;

/// <summary>Builds safetensors bytes by hand (header JSON + data), independently of the library's writer.</summary>
internal static class RawSafetensors
{
    /// <summary>8-byte little-endian length, the header text as given (padded with spaces to 8), then the data.</summary>
    public static byte[] Build(string headerJson, byte[] data, bool pad = true)
    {
        byte[] json = Encoding.UTF8.GetBytes(headerJson);
        int length = pad ? (json.Length + 7) / 8 * 8 : json.Length;
        var bytes = new byte[8 + length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)length);
        json.CopyTo(bytes, 8);
        for (int i = json.Length; i < length; i++) bytes[8 + i] = (byte)' ';
        data.CopyTo(bytes, 8 + length);
        return bytes;
    }

    /// <summary>The header JSON and the data region of a file's bytes.</summary>
    public static (string Header, byte[] Data) Split(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (Encoding.UTF8.GetString(file, 8, n), file[(8 + n)..]);
    }
}
