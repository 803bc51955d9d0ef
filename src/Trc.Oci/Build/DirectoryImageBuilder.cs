using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Trc.Oci.Images;
using Trc.Oci.Layout;
using Trc.Oci.Native;
using Trc.Oci.Store;

namespace Trc.Oci.Build;

/// <summary>What goes into the config of an image made from a directory.</summary>
public sealed record DirectoryImageOptions
{
    /// <summary>The entrypoint, or null.</summary>
    public IReadOnlyList<string>? Entrypoint { get; init; }

    /// <summary>The command, or null.</summary>
    public IReadOnlyList<string>? Cmd { get; init; }

    /// <summary>Environment variables as <c>NAME=value</c>, or null.</summary>
    public IReadOnlyList<string>? Env { get; init; }

    /// <summary>The working directory, or null.</summary>
    public string? WorkingDir { get; init; }

    /// <summary>The user to run as, or null.</summary>
    public string? User { get; init; }

    /// <summary>The architecture recorded in the config (default: this machine's).</summary>
    public string? Architecture { get; init; }

    /// <summary>
    /// A fixed modification time for every entry (reproducible builds, as <c>SOURCE_DATE_EPOCH</c>);
    /// null keeps each file's own time, in whole seconds.
    /// </summary>
    public DateTimeOffset? ModificationTime { get; init; }

    /// <summary>The gzip level of the layer (default: fastest, which is what a single local layer wants).</summary>
    public CompressionLevel Compression { get; init; } = CompressionLevel.Fastest;
}

/// <summary>What <see cref="DirectoryImageBuilder.Build"/> made.</summary>
/// <param name="ManifestDigest">The image manifest's digest.</param>
/// <param name="ManifestSize">The manifest's size.</param>
/// <param name="ConfigDigest">The config's digest.</param>
/// <param name="LayerDigest">The (gzip) layer's digest.</param>
/// <param name="LayerSize">The layer's compressed size.</param>
/// <param name="DiffId">The uncompressed layer's digest.</param>
/// <param name="Entries">Tar entries written.</param>
/// <param name="Skipped">Paths not put in the image (sockets, FIFOs, devices), relative to the directory.</param>
public sealed record BuiltImage(Digest ManifestDigest, long ManifestSize, Digest ConfigDigest, Digest LayerDigest, long LayerSize, Digest DiffId, long Entries, IReadOnlyList<string> Skipped);

/// <summary>
/// Makes a single-layer OCI image from a directory and writes it into an OCI layout under a tag:
/// regular files, directories, symlinks and hard links with their modes, all owned by root (0:0);
/// sockets, FIFOs and device nodes are left out and listed. Entries are sorted, so the same
/// tree with <see cref="DirectoryImageOptions.ModificationTime"/> set gives the same digest.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public static class DirectoryImageBuilder
{
    /// <summary>Builds the image and tags it in the layout.</summary>
    /// <param name="directory">The directory that becomes the image's root.</param>
    /// <param name="layout">The layout to write into (created if missing).</param>
    /// <param name="tag">The tag to give the image in the layout.</param>
    /// <param name="options">The config to record.</param>
    /// <param name="cancellationToken">Stops the build; nothing is tagged.</param>
    /// <returns>The digests.</returns>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public static BuiltImage Build(string directory, string layout, string tag, DirectoryImageOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new DirectoryImageOptions();
        var root = new DirectoryInfo(directory);
        if (!root.Exists)
        {
            throw new DirectoryNotFoundException($"{directory}: no such directory");
        }
        if (!ImageReference.IsValidTag(tag, out var tagError))
        {
            throw new ArgumentException(tagError, nameof(tag));
        }
        var target = OciLayout.OpenOrCreate(layout);
        var store = target.Blobs;

        var skipped = new List<string>();
        long entries;
        Digest layerDigest;
        Digest diffId;
        long layerSize;
        var ingest = store.NewIngestPath();
        try
        {
            using (var file = new FileStream(ingest, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                using var compressedHasher = Digest.CreateHasher();
                using var tarHasher = Digest.CreateHasher();
                using (var compressedTee = new HashingWriteStream(file, compressedHasher))
                using (var gzip = new GZipStream(compressedTee, options.Compression, leaveOpen: true))
                using (var tarTee = new HashingWriteStream(gzip, tarHasher))
                using (var writer = new TarWriter(tarTee, TarEntryFormat.Gnu, leaveOpen: true))
                {
                    entries = WriteTree(writer, root, "", options, skipped, new Dictionary<(ulong, ulong), string>(), cancellationToken);
                }
                layerDigest = compressedHasher.GetDigestAndReset();
                diffId = tarHasher.GetDigestAndReset();
                file.Flush(flushToDisk: true);
                layerSize = file.Length;
            }
            store.Adopt(ingest, layerDigest);
        }
        finally
        {
            File.Delete(ingest);
        }

        var config = new ImageConfig
        {
            Architecture = options.Architecture ?? PlatformMatcher.Host().Architecture,
            Os = "linux",
            Config = new ContainerConfig
            {
                Entrypoint = options.Entrypoint,
                Cmd = options.Cmd,
                Env = options.Env,
                WorkingDir = options.WorkingDir,
                User = options.User,
            },
            RootFs = new RootFs { Type = "layers", DiffIds = [diffId] },
        };
        var configBytes = JsonSerializer.SerializeToUtf8Bytes(config, OciJsonContext.Default.ImageConfig);
        var configDigest = store.Put(configBytes);
        var manifest = new ImageManifest
        {
            SchemaVersion = 2,
            MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = configDigest, Size = configBytes.Length },
            Layers = [new Descriptor { MediaType = MediaTypes.OciLayerTarGzip, Digest = layerDigest, Size = layerSize }],
        };
        var manifestBytes = JsonSerializer.SerializeToUtf8Bytes(manifest, OciJsonContext.Default.ImageManifest);
        var manifestDigest = store.Put(manifestBytes);
        target.Tag(new Descriptor { MediaType = MediaTypes.OciManifest, Digest = manifestDigest, Size = manifestBytes.Length }, tag);
        return new BuiltImage(manifestDigest, manifestBytes.Length, configDigest, layerDigest, layerSize, diffId, entries, skipped);
    }

    private static long WriteTree(TarWriter writer, DirectoryInfo directory, string prefix, DirectoryImageOptions options, List<string> skipped,
        Dictionary<(ulong Device, ulong Inode), string> linked, CancellationToken ct)
    {
        long count = 0;
        var children = directory.EnumerateFileSystemInfos().OrderBy(i => i.Name, StringComparer.Ordinal);
        foreach (var info in children)
        {
            ct.ThrowIfCancellationRequested();
            var name = prefix + info.Name;
            var status = Libc.LStat(info.FullName) ?? throw new IOException($"{info.FullName}: disappeared while the image was being made");
            var mtime = options.ModificationTime ?? DateTimeOffset.FromUnixTimeSeconds(new DateTimeOffset(info.LastWriteTimeUtc).ToUnixTimeSeconds());
            switch (status.Type)
            {
                case Libc.TypeSymlink:
                    writer.WriteEntry(Entry(TarEntryType.SymbolicLink, name, (UnixFileMode)0b111_111_111, mtime, info.LinkTarget));
                    count++;
                    break;
                case Libc.TypeDirectory:
                    writer.WriteEntry(Entry(TarEntryType.Directory, name + "/", info.UnixFileMode, mtime, null));
                    count++;
                    count += WriteTree(writer, (DirectoryInfo)info, name + "/", options, skipped, linked, ct);
                    break;
                case Libc.TypeRegular when status.Links > 1 && linked.TryGetValue((Device(status), status.Inode), out var first):
                    // A second name of a file already written: a hard link, as tar and mkfs.ext4 -d keep it.
                    writer.WriteEntry(Entry(TarEntryType.HardLink, name, info.UnixFileMode, mtime, first));
                    count++;
                    break;
                case Libc.TypeRegular:
                    if (status.Links > 1)
                    {
                        linked[(Device(status), status.Inode)] = name;
                    }
                    var entry = Entry(TarEntryType.RegularFile, name, info.UnixFileMode, mtime, null);
                    using (var content = new FileStream(info.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
                    {
                        entry.DataStream = content;
                        writer.WriteEntry(entry);
                    }
                    count++;
                    break;
                default:
                    // Sockets, FIFOs and device nodes: not content an image carries.
                    skipped.Add(name);
                    break;
            }
        }
        return count;
    }

    private static ulong Device(Libc.FileStatus status) => ((ulong)status.DeviceMajor << 32) | status.DeviceMinor;

    private static GnuTarEntry Entry(TarEntryType type, string name, UnixFileMode mode, DateTimeOffset mtime, string? linkName)
    {
        var entry = new GnuTarEntry(type, name)
        {
            Mode = mode,
            Uid = 0,
            Gid = 0,
            UserName = "root",
            GroupName = "root",
            ModificationTime = mtime,
            AccessTime = mtime,
            ChangeTime = mtime,
        };
        if (linkName is not null)
        {
            entry.LinkName = linkName;
        }
        return entry;
    }
}

/// <summary>Forwards writes and hashes them on the way.</summary>
internal sealed class HashingWriteStream(Stream inner, DigestHasher hasher) : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => hasher.BytesHashed;

    public override long Position
    {
        get => hasher.BytesHashed;
        set => throw new NotSupportedException();
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        hasher.Append(buffer);
        inner.Write(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
