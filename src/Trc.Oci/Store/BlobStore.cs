using System.Text;
using Trc.Oci.Images;

namespace Trc.Oci.Store;

/// <summary>
/// A content-addressed store of blobs (layers, configs, manifests) laid out as the <c>blobs/</c>
/// directory of an OCI image layout: <c>ROOT/blobs/&lt;algorithm&gt;/&lt;hex&gt;</c>.
/// </summary>
/// <remarks>
/// Invariant: a file under <c>blobs/</c> always holds exactly the bytes its name is the digest of.
/// Bytes arrive in <c>ROOT/ingest/</c> under a unique name and are renamed into place only after
/// their size and digest were checked on the bytes written (<see cref="BlobWriter.Commit"/>), so a
/// partial or corrupt download is never visible and two writers of the same blob cannot collide.
/// </remarks>
public sealed class BlobStore
{
    private const string IngestDirectory = "ingest";

    /// <summary>Opens (and creates, when missing) a store rooted at <paramref name="root"/>.</summary>
    /// <param name="root">The store's directory; an existing OCI image layout works too.</param>
    public BlobStore(string root)
    {
        Root = Path.GetFullPath(root);
        Directory.CreateDirectory(Path.Combine(Root, "blobs"));
        var marker = Path.Combine(Root, "oci-layout");
        if (!File.Exists(marker))
        {
            // Makes the store a valid OCI layout, so skopeo and umoci can read what trc pulled.
            WriteAtomically(marker, Encoding.UTF8.GetBytes("{\"imageLayoutVersion\":\"1.0.0\"}"));
        }
    }

    /// <summary>The store's directory.</summary>
    public string Root { get; }

    /// <summary>Where the blob with <paramref name="digest"/> is (or would be) stored.</summary>
    /// <param name="digest">The blob's digest.</param>
    /// <returns>The absolute path.</returns>
    public string PathOf(Digest digest) => Path.Combine(Root, "blobs", digest.Algorithm, digest.Hex);

    /// <summary>Whether the blob is stored, with <paramref name="size"/> bytes when a size is given.</summary>
    /// <param name="digest">The blob's digest.</param>
    /// <param name="size">The size it must have, or null for any.</param>
    /// <returns>True when present (and of that size).</returns>
    public bool Contains(Digest digest, long? size = null)
    {
        var info = new FileInfo(PathOf(digest));
        return info.Exists && (size is null || info.Length == size);
    }

    /// <summary>Marks a stored blob as used now (its modification time), so garbage collection by age keeps it.</summary>
    /// <param name="digest">The blob's digest.</param>
    public void Touch(Digest digest)
    {
        try
        {
            File.SetLastWriteTimeUtc(PathOf(digest), DateTime.UtcNow);
        }
        catch (FileNotFoundException)
        {
            // Collected meanwhile: the caller fetches it again.
        }
    }

    /// <summary>Opens a stored blob for reading.</summary>
    /// <param name="digest">The blob's digest.</param>
    /// <returns>The open file.</returns>
    /// <exception cref="FileNotFoundException">The blob is not stored.</exception>
    public FileStream OpenRead(Digest digest) =>
        new(PathOf(digest), new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read | FileShare.Delete, BufferSize = 0, Options = FileOptions.SequentialScan });

    /// <summary>Reads a small stored blob (a manifest or a config) whole.</summary>
    /// <param name="digest">The blob's digest.</param>
    /// <param name="maxBytes">The most it may hold.</param>
    /// <returns>The bytes.</returns>
    /// <exception cref="BlobStoreException">The blob is missing or larger than <paramref name="maxBytes"/>.</exception>
    public byte[] ReadAll(Digest digest, int maxBytes)
    {
        var path = PathOf(digest);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new BlobStoreException($"blob {digest} is not in the store at {Root}");
        }
        if (info.Length > maxBytes)
        {
            throw new BlobStoreException($"blob {digest} is {info.Length} bytes, more than the {maxBytes} allowed here");
        }
        return File.ReadAllBytes(path);
    }

    /// <summary>Stores bytes already in memory (a manifest or config written locally) under their digest.</summary>
    /// <param name="bytes">The content.</param>
    /// <param name="algorithm">The digest algorithm.</param>
    /// <returns>The content's digest.</returns>
    public Digest Put(ReadOnlySpan<byte> bytes, string algorithm = Digest.Sha256)
    {
        var digest = Digest.Compute(algorithm, bytes);
        if (Contains(digest, bytes.Length))
        {
            Touch(digest);
        }
        else
        {
            using var writer = BeginWrite(digest, bytes.Length);
            writer.Write(bytes);
            writer.Commit();
        }
        return digest;
    }

    /// <summary>Starts writing a blob whose digest and size are known in advance.</summary>
    /// <param name="expected">The digest the bytes must have.</param>
    /// <param name="expectedSize">The size they must have, or -1 when unknown.</param>
    /// <returns>A writer; <see cref="BlobWriter.Commit"/> it, or dispose it to discard the bytes.</returns>
    public BlobWriter BeginWrite(Digest expected, long expectedSize)
    {
        var ingest = Path.Combine(Root, IngestDirectory);
        Directory.CreateDirectory(ingest);
        var temp = Path.Combine(ingest, $"{expected.Hex[..16]}.{Guid.NewGuid():N}.partial");
        return new BlobWriter(this, expected, expectedSize, temp);
    }

    /// <summary>A fresh path in the store's ingest directory, for content whose digest is computed while it is written.</summary>
    /// <returns>The path (no file there yet).</returns>
    public string NewIngestPath()
    {
        var ingest = Path.Combine(Root, IngestDirectory);
        Directory.CreateDirectory(ingest);
        return Path.Combine(ingest, $"new.{Guid.NewGuid():N}.partial");
    }

    /// <summary>
    /// Moves a file written by this process (under <see cref="NewIngestPath"/>), whose digest it
    /// computed on the bytes it wrote, into place.
    /// </summary>
    /// <param name="ingestPath">The file.</param>
    /// <param name="digest">The digest of its bytes.</param>
    /// <returns>The stored blob's path.</returns>
    public string Adopt(string ingestPath, Digest digest)
    {
        var final = PathOf(digest);
        Directory.CreateDirectory(Path.GetDirectoryName(final)!);
        File.Move(ingestPath, final, overwrite: true);
        return final;
    }

    /// <summary>Copies <paramref name="source"/> into the store, checking size and digest on the way.</summary>
    /// <param name="source">The bytes, read to the end.</param>
    /// <param name="expected">The digest they must have.</param>
    /// <param name="expectedSize">The size they must have, or -1 when unknown.</param>
    /// <param name="progress">Told the bytes stored so far after each read, or null.</param>
    /// <param name="cancellationToken">Stops the copy; nothing is stored.</param>
    /// <returns>The path of the stored blob.</returns>
    /// <exception cref="BlobVerificationException">The bytes are not the ones expected; nothing is stored.</exception>
    public async Task<string> IngestAsync(Stream source, Digest expected, long expectedSize, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        using var writer = BeginWrite(expected, expectedSize);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(256 * 1024);
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                writer.Write(buffer.AsSpan(0, read));
                progress?.Report(writer.Length);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return writer.Commit();
    }

    /// <summary>Deletes a stored blob, if present.</summary>
    /// <param name="digest">The blob's digest.</param>
    /// <returns>The bytes freed.</returns>
    public long Delete(Digest digest)
    {
        var info = new FileInfo(PathOf(digest));
        if (!info.Exists)
        {
            return 0;
        }
        var length = info.Length;
        info.Delete();
        return length;
    }

    /// <summary>Every stored blob, with its size and last write time.</summary>
    /// <returns>The blobs, in no particular order.</returns>
    public IEnumerable<StoredBlob> Enumerate()
    {
        var blobs = new DirectoryInfo(Path.Combine(Root, "blobs"));
        foreach (var algorithm in blobs.EnumerateDirectories())
        {
            foreach (var file in algorithm.EnumerateFiles())
            {
                if (Digest.TryParse($"{algorithm.Name}:{file.Name}", out var digest, out _))
                {
                    yield return new StoredBlob(digest, file.Length, file.LastWriteTimeUtc);
                }
            }
        }
    }

    /// <summary>Removes ingest files left by writers that died (older than <paramref name="olderThan"/>).</summary>
    /// <param name="olderThan">How old a partial file must be to be considered abandoned.</param>
    /// <returns>How many were removed.</returns>
    public int CleanIngest(TimeSpan olderThan)
    {
        var removed = 0;
        var cutoff = DateTime.UtcNow - olderThan;
        var ingest = new DirectoryInfo(Path.Combine(Root, IngestDirectory));
        if (!ingest.Exists)
        {
            return 0;
        }
        foreach (var file in ingest.EnumerateFiles())
        {
            if (file.LastWriteTimeUtc < cutoff)
            {
                try
                {
                    file.Delete();
                    removed++;
                }
                catch (IOException)
                {
                    // Raced with its writer finishing or another cleaner: either way it is gone or in use.
                }
            }
        }
        return removed;
    }

    internal static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}

/// <summary>A blob in a <see cref="BlobStore"/>.</summary>
/// <param name="Digest">Its digest.</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="LastWriteUtc">When it was stored.</param>
public sealed record StoredBlob(Digest Digest, long Size, DateTime LastWriteUtc);

/// <summary>
/// Bytes on their way into a <see cref="BlobStore"/>: written to a private file, checked against
/// the expected size as they come (a blob longer than announced stops at the first extra byte) and
/// against the digest on <see cref="Commit"/>. Disposing without committing discards them.
/// </summary>
public sealed class BlobWriter : Stream
{
    private readonly BlobStore _store;
    private readonly FileStream _file;
    private readonly DigestVerifier _verifier;
    private readonly string _tempPath;
    private bool _committed;
    private bool _disposed;

    internal BlobWriter(BlobStore store, Digest expected, long expectedSize, string tempPath)
    {
        _store = store;
        Expected = expected;
        ExpectedSize = expectedSize;
        _tempPath = tempPath;
        _verifier = expected.CreateVerifier();
        _file = new FileStream(tempPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 0,
            PreallocationSize = expectedSize > 0 ? expectedSize : 0,
        });
    }

    /// <summary>The digest the bytes must have.</summary>
    public Digest Expected { get; }

    /// <summary>The size the bytes must have, or -1 when unknown.</summary>
    public long ExpectedSize { get; }

    /// <inheritdoc />
    public override bool CanRead => false;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override bool CanWrite => !_disposed && !_committed;

    /// <summary>The bytes written so far.</summary>
    public override long Length => _verifier.BytesVerified;

    /// <inheritdoc />
    public override long Position
    {
        get => Length;
        set => throw new NotSupportedException();
    }

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_committed)
        {
            throw new InvalidOperationException("the blob is already committed");
        }
        if (ExpectedSize >= 0 && Length + buffer.Length > ExpectedSize)
        {
            throw new BlobVerificationException(Expected,
                $"blob {Expected} is longer than the {ExpectedSize} bytes its descriptor says (more than {ExpectedSize} bytes arrived)");
        }
        _verifier.Append(buffer);
        _file.Write(buffer);
    }

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // Local disk writes: the synchronous path is the fast one, and it keeps the size check in one place.
        cancellationToken.ThrowIfCancellationRequested();
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Checks the size and digest and, when they are right, makes the blob visible in the store.</summary>
    /// <returns>The path of the stored blob.</returns>
    /// <exception cref="BlobVerificationException">The bytes are not the expected ones; they are discarded.</exception>
    public string Commit()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var length = Length;
        if (ExpectedSize >= 0 && length != ExpectedSize)
        {
            throw new BlobVerificationException(Expected,
                $"blob {Expected} ended after {length} bytes, but its descriptor says {ExpectedSize} bytes");
        }
        if (!_verifier.Verify(out var actual))
        {
            throw new BlobVerificationException(Expected,
                $"blob {Expected}: the {length} bytes received hash to {actual}, not to the digest asked for (corrupted in transit or by the server)");
        }
        _file.Flush(flushToDisk: true);
        _file.Dispose();
        var final = _store.PathOf(Expected);
        Directory.CreateDirectory(Path.GetDirectoryName(final)!);
        // Overwriting is safe: whoever else committed this name wrote the same verified bytes.
        File.Move(_tempPath, final, overwrite: true);
        _committed = true;
        return final;
    }

    /// <inheritdoc />
    public override void Flush() { }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing)
        {
            _disposed = true;
            _file.Dispose();
            _verifier.Dispose();
            if (!_committed)
            {
                try
                {
                    File.Delete(_tempPath);
                }
                catch (IOException)
                {
                    // Left for CleanIngest.
                }
            }
        }
        base.Dispose(disposing);
    }
}

/// <summary>A store operation failed (a missing or oversized blob).</summary>
public class BlobStoreException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="inner">The cause, or null.</param>
    public BlobStoreException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>Bytes offered to the store are not the blob they claim to be; nothing was stored.</summary>
public sealed class BlobVerificationException : BlobStoreException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="digest">The digest the bytes should have had.</param>
    /// <param name="message">What was wrong with them.</param>
    public BlobVerificationException(Digest digest, string message) : base(message) => Digest = digest;

    /// <summary>The digest the bytes should have had.</summary>
    public Digest Digest { get; }
}
