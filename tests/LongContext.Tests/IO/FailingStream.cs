namespace LongContext.Tests.IO;

/// <summary>
/// Passes writes through to an inner stream until <c>failAfter</c> bytes have gone through, writes the part of the
/// failing call that fits, then throws an <see cref="IOException"/>: a disk that fills up or a process killed midway.
/// Does not own the inner stream.
/// </summary>
internal sealed class FailingStream(Stream inner, long failAfter) : Stream
{
    public long Written { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        long room = failAfter - Written;
        if (buffer.Length <= room)
        {
            inner.Write(buffer);
            Written += buffer.Length;
            return;
        }
        inner.Write(buffer[..(int)Math.Max(0, room)]);
        Written += Math.Max(0, room);
        throw new IOException($"injected failure after {Written} bytes");
    }

    public override void WriteByte(byte value) => Write([value]);
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
