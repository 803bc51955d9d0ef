using System.IO.Compression;

namespace Trc.Oci.Layers;

/// <summary>Picks the decompressor for a layer from its first bytes.</summary>
internal static class LayerStreams
{
    /// <summary>Returns a stream of the tar bytes: gzip is unwrapped, zstd is refused.</summary>
    public static Stream OpenTar(Stream layer)
    {
        var head = new byte[4];
        var n = layer.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var replay = new PrefixedStream(head.AsMemory(0, n), layer);
        if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        {
            return new GZipStream(replay, CompressionMode.Decompress, leaveOpen: true);
        }
        if (n == 4 && head is [0x28, 0xb5, 0x2f, 0xfd])
        {
            throw new LayerException("zstd-compressed layers are not supported yet");
        }
        return replay;
    }
}

/// <summary>Read-only stream: some bytes already read, then the rest of the inner stream.</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : Stream
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    /// <summary>Bytes handed out so far: the offset reported in errors.</summary>
    public long Consumed { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n;
        if (!_prefix.IsEmpty)
        {
            n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
        }
        else
        {
            n = inner.Read(buffer);
        }
        Consumed += n;
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Consumed; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
