using System.Text.Json;
using Trc.Oci.Images;
using Trc.Oci.Layers;

using Trc.Oci.Native;

namespace Trc.Oci.RootDisks;

/// <summary>
/// Read-only ext4 root disks, one per image manifest digest, built with <c>mkfs.ext4 -d</c> (no
/// mount, no root privilege needed) and kept in a directory shared by every process of the node.
/// </summary>
/// <remarks>
/// <para>Layout: <c>DIR/ALGORITHM/HEX.ext4</c> (the disk, mode 0444) and <c>HEX.json</c> beside it
/// (<see cref="RootDiskConfig"/>); each build happens in its own 0700 directory under <c>DIR/tmp/</c>
/// (a build tree holds the image's setuid files), on the same file system so publication is a rename.</para>
/// <para>Invariant: a disk exists iff its <c>.ext4</c> exists, and then its <c>.json</c> does too.
/// Both are written and fsync-ed in <c>tmp/</c>, then the json is renamed into place and the image
/// last; deletion removes the image first. A crash leaves only <c>tmp/</c> entries (or a json
/// without its image), which <see cref="CollectGarbage"/> removes.</para>
/// <para>Builds of one digest are serialised by an exclusive flock on <c>HEX.lock</c>, across
/// processes too: the first caller builds, later ones wait and get the published disk. Different
/// digests build in parallel. The last use of a disk is the modification time of its json, set by
/// <see cref="TryGet"/> and <see cref="GetOrBuildAsync"/> from the <see cref="TimeProvider"/>.</para>
/// </remarks>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RootDiskCache
{
    private const string ImageExtension = ".ext4";
    private const string ConfigExtension = ".json";
    private const string LockExtension = ".lock";
    private const string TempDirectoryName = "tmp";
    private const UnixFileMode ReadOnlyMode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode PrivateDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode RootDirectoryMode = (UnixFileMode)0x1ed; // 0755
    private static readonly string[] Algorithms = [Digest.Sha256, Digest.Sha512];
    private static readonly TimeSpan MaxLockPoll = TimeSpan.FromMilliseconds(500);

    private readonly RootDiskOptions _options;
    private readonly TimeProvider _time;

    /// <summary>Creates a cache over <paramref name="directory"/> (created when first needed).</summary>
    /// <param name="directory">The cache directory.</param>
    /// <param name="options">Sizing, tools and housekeeping; defaults when null.</param>
    /// <param name="time">The clock for build and last-use times and garbage ages; the system clock when null.</param>
    public RootDiskCache(string directory, RootDiskOptions? options = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        CacheDirectory = Path.GetFullPath(directory);
        _options = options ?? new RootDiskOptions();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The absolute cache directory.</summary>
    public string CacheDirectory { get; }

    private string TempDirectory => Path.Combine(CacheDirectory, TempDirectoryName);

    /// <summary>The published disk of <paramref name="manifestDigest"/>, or null; marks it used now.</summary>
    /// <param name="manifestDigest">The image manifest digest.</param>
    /// <returns>The disk, or null when there is none (or its configuration is unreadable: it is then rebuilt).</returns>
    public RootDisk? TryGet(Digest manifestDigest)
    {
        ArgumentNullException.ThrowIfNull(manifestDigest);
        var disk = Read(manifestDigest);
        if (disk is not null)
        {
            MarkUsed(disk.ConfigPath);
        }
        return disk;
    }

    /// <summary>
    /// The published disks, in digest order. Unlike <see cref="TryGet"/>, listing does not mark them
    /// used. A disk whose configuration cannot be read is left out (the next build replaces it).
    /// </summary>
    /// <returns>The disks.</returns>
    public IReadOnlyList<RootDisk> Published()
    {
        var disks = new List<RootDisk>();
        foreach (var algorithm in Algorithms)
        {
            var dir = Path.Combine(CacheDirectory, algorithm);
            if (!Directory.Exists(dir))
            {
                continue;
            }
            foreach (var image in Directory.EnumerateFiles(dir, "*" + ImageExtension).Order(StringComparer.Ordinal))
            {
                if (Digest.TryParse($"{algorithm}:{Path.GetFileNameWithoutExtension(image)}", out var digest, out _)
                    && Read(digest) is { } disk)
                {
                    disks.Add(disk);
                }
            }
        }
        return disks;
    }

    /// <summary>
    /// The disk of <paramref name="manifestDigest"/>, built first when it is not in the cache.
    /// </summary>
    /// <remarks>
    /// <para>Building: <paramref name="populate"/> fills an empty directory with the image's files; the
    /// tree is walked to size the disk (content blocks, directories, inode tables, plus
    /// <see cref="RootDiskOptions.HeadroomFraction"/>, at least <see cref="RootDiskOptions.MinimumHeadroomBytes"/>);
    /// <c>mkfs.ext4 -d</c> copies it (retried once at twice the size if it runs out of space); the tree is deleted
    /// whatever happens.</para>
    /// <para>Ownership: mkfs copies uid/gid/mode from the files. Run as root with the applier's
    /// <see cref="LayerApplierOptions.ApplyOwnership"/>, they are already right. Otherwise (unprivileged, or
    /// ownership not applied) the owners in <see cref="LayerApplyResult.Owners"/> are set afterwards in one
    /// <c>debugfs -w</c> batch, for the inodes whose host owner differs; an entry without a record
    /// belongs to root. A path debugfs cannot name (a newline in it) that needs a fix fails the build.
    /// Unprivileged, entries the process owns but cannot read are made readable for mkfs and get their
    /// mode back the same way.</para>
    /// <para>The disk gets the ext4 <c>read-only</c> feature: a kernel refuses to mount it read-write,
    /// so no guest can change a disk every instance of the image shares.</para>
    /// </remarks>
    /// <param name="manifestDigest">The image manifest digest: the cache key.</param>
    /// <param name="config">The image configuration; its run defaults are recorded for the guest.</param>
    /// <param name="populate">Fills the given empty directory with the image's files and says who owns them.</param>
    /// <param name="progress">Receives the phases, or null.</param>
    /// <param name="cancellationToken">Stops the wait, populate, mkfs or debugfs; nothing is published then.</param>
    /// <returns>The published disk.</returns>
    /// <exception cref="RootDiskException">mkfs or debugfs is missing or failed, or the tree cannot be put on a disk.</exception>
    public async Task<RootDisk> GetOrBuildAsync(Digest manifestDigest, ImageConfig config,
        Func<string, CancellationToken, Task<LayerApplyResult>> populate, IProgress<RootDiskProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifestDigest);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(populate);
        if (TryGet(manifestDigest) is { } cached)
        {
            progress?.Report(PublishedReport(cached));
            return cached;
        }
        var held = await AcquireAsync(manifestDigest, progress, cancellationToken).ConfigureAwait(false);
        try
        {
            if (TryGet(manifestDigest) is { } built)
            {
                progress?.Report(PublishedReport(built));
                return built; // built by whoever held the lock before
            }
            return await BuildAsync(manifestDigest, config, populate, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Nobody needs the lock file once this build ended: waiters notice and use a new one.
            held.DeleteAndRelease();
        }
    }

    /// <summary>
    /// Deletes the published disks that are not in <paramref name="keep"/> and were last used more
    /// than <paramref name="minUnused"/> ago, unless their lock is held (a build or another collection);
    /// and abandoned <c>tmp/</c> entries older than <see cref="RootDiskOptions.TempMaxAge"/> whose build
    /// is not running.
    /// </summary>
    /// <remarks>
    /// A disk returned by <see cref="TryGet"/> just before is only protected by being in
    /// <paramref name="keep"/> or recent: callers pass the digests of every disk they run or are about to.
    /// A running VM holding a deleted disk open keeps reading it.
    /// </remarks>
    /// <param name="keep">Digests whose disks are never deleted.</param>
    /// <param name="minUnused">How long a disk must have been unused to be deleted.</param>
    /// <returns>What was deleted.</returns>
    public RootDiskGcResult CollectGarbage(IReadOnlySet<Digest> keep, TimeSpan minUnused)
    {
        ArgumentNullException.ThrowIfNull(keep);
        var now = _time.GetUtcNow().UtcDateTime;
        int deleted = 0, kept = 0, temp = 0;
        long freed = 0;
        foreach (var algorithm in Algorithms)
        {
            var dir = Path.Combine(CacheDirectory, algorithm);
            if (!Directory.Exists(dir))
            {
                continue;
            }
            foreach (var file in Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal).ToList())
            {
                var name = Path.GetFileName(file);
                var extension = Path.GetExtension(name);
                if (!Digest.TryParse($"{algorithm}:{Path.GetFileNameWithoutExtension(name)}", out var digest, out _))
                {
                    continue; // not a name this cache writes: leave it alone
                }
                switch (extension)
                {
                    case ImageExtension:
                        var lastUse = LastWrite(PathOf(digest, ConfigExtension)) ?? LastWrite(file);
                        if (keep.Contains(digest) || lastUse is null || now - lastUse.Value < minUnused)
                        {
                            kept++;
                            continue;
                        }
                        if (CacheLock.TryAcquire(PathOf(digest, LockExtension)) is not { } held)
                        {
                            kept++;
                            continue;
                        }
                        try
                        {
                            // TryGet does not lock: look again, now that no build can start, to narrow the race with it.
                            if (LastWrite(PathOf(digest, ConfigExtension)) is { } used && now - used < minUnused)
                            {
                                kept++;
                                continue;
                            }
                            // Unpublish first: without its image, a json is not a disk.
                            freed += DeleteFile(file) + DeleteFile(PathOf(digest, ConfigExtension));
                            deleted++;
                        }
                        finally
                        {
                            held.DeleteAndRelease();
                        }
                        break;
                    case ConfigExtension or LockExtension when !File.Exists(PathOf(digest, ImageExtension)):
                        // A json left by a crash between the two renames, or a lock file left by a crash.
                        if (LastWrite(file) is { } written && now - written >= _options.TempMaxAge
                            && CacheLock.TryAcquire(PathOf(digest, LockExtension)) is { } stray)
                        {
                            try
                            {
                                if (!File.Exists(PathOf(digest, ImageExtension)))
                                {
                                    freed += DeleteFile(PathOf(digest, ConfigExtension));
                                    temp++;
                                }
                            }
                            finally
                            {
                                stray.DeleteAndRelease();
                            }
                        }
                        break;
                }
            }
        }
        if (Directory.Exists(TempDirectory))
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(TempDirectory).ToList())
            {
                if (LastWrite(entry) is not { } written || now - written < _options.TempMaxAge)
                {
                    continue;
                }
                var digest = DigestOfBuild(Path.GetFileName(entry));
                var held = digest is null ? null : CacheLock.TryAcquire(PathOf(digest, LockExtension));
                if (digest is not null && held is null)
                {
                    continue; // its build is running
                }
                try
                {
                    freed += DeleteTree(entry);
                    temp++;
                }
                finally
                {
                    held?.DeleteAndRelease();
                }
            }
        }
        return new RootDiskGcResult(deleted, kept, temp, freed);
    }

    private async Task<RootDisk> BuildAsync(Digest digest, ImageConfig config,
        Func<string, CancellationToken, Task<LayerApplyResult>> populate, IProgress<RootDiskProgress>? progress, CancellationToken cancellationToken)
    {
        // Before populate: a missing tool should not cost a pull first.
        var mkfs = ExternalTool.Locate(Ext4Image.Mkfs, _options.MkfsPath);
        var debugfs = ExternalTool.Locate(Ext4Image.Debugfs, _options.DebugfsPath);
        var work = CreateBuildDirectory(digest);
        try
        {
            var rootfs = Path.Combine(work, "rootfs");
            Directory.CreateDirectory(rootfs);
            File.SetUnixFileMode(rootfs, RootDirectoryMode); // the disk's '/': not the umask's idea of it
            progress?.Report(new RootDiskProgress(RootDiskPhase.Populating, 0, 0));
            var applied = await populate(rootfs, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException("populate returned no LayerApplyResult");

            var unprivileged = _options.AssumeUnprivileged || !Environment.IsPrivilegedProcess;
            var tree = await Task.Run(() => RootTree.Scan(rootfs, makeReadable: unprivileged, cancellationToken), cancellationToken).ConfigureAwait(false);
            progress?.Report(new RootDiskProgress(RootDiskPhase.Sizing, tree.ContentBytes, tree.Inodes));
            var script = DebugfsScript.Plan(tree, applied.Owners); // before mkfs: a name debugfs cannot take fails fast

            var image = Path.Combine(work, "disk" + ImageExtension);
            var geometry = DiskGeometry.For(tree, _options).Scale(_options.FirstAttemptScale);
            geometry = await Ext4Image.FormatAsync(mkfs, rootfs, image, geometry, digest,
                g => progress?.Report(new RootDiskProgress(RootDiskPhase.Formatting, g.SizeBytes, tree.Inodes)), cancellationToken).ConfigureAwait(false);
            if (script.InodesFixed > 0)
            {
                progress?.Report(new RootDiskProgress(RootDiskPhase.FixingOwners, geometry.SizeBytes, script.InodesFixed));
            }
            await Ext4Image.RunDebugfsAsync(debugfs, image, Path.Combine(work, "debugfs.cmd"), script.Lines, cancellationToken).ConfigureAwait(false);
            // The tree is no longer needed: free its space before the disk is published.
            await Task.Run(() => TryDeleteTree(rootfs), CancellationToken.None).ConfigureAwait(false);

            var now = _time.GetUtcNow();
            var recorded = new RootDiskConfig
            {
                ManifestDigest = digest,
                Architecture = config.Architecture,
                Os = config.Os,
                Variant = config.Variant,
                Entrypoint = config.Config?.Entrypoint,
                Cmd = config.Config?.Cmd,
                Env = config.Config?.Env,
                WorkingDir = config.Config?.WorkingDir,
                User = config.Config?.User,
                BuiltAt = now,
                ContentBytes = tree.ContentBytes,
                Inodes = tree.Inodes,
                DiskBytes = geometry.SizeBytes,
                FilesystemUuid = Ext4Image.FilesystemUuid(digest),
                InodesFixed = script.InodesFixed,
                SkippedCount = applied.Skipped.Count,
                Skipped = [.. applied.Skipped.Take(RootDiskConfig.MaxSkippedListed).Select(s => new RootDiskSkippedEntry(s.Name, s.Type.ToString(), s.Reason))],
            };
            var json = Path.Combine(work, "config" + ConfigExtension);
            WriteDurably(json, recorded.ToJson());
            FsyncFile(image);
            File.SetUnixFileMode(image, ReadOnlyMode);
            File.SetUnixFileMode(json, ReadOnlyMode);
            File.SetLastWriteTimeUtc(json, now.UtcDateTime); // the last use, for collection

            cancellationToken.ThrowIfCancellationRequested(); // the last point where giving up leaves nothing
            var finalJson = PathOf(digest, ConfigExtension);
            var finalImage = PathOf(digest, ImageExtension);
            File.Move(json, finalJson, overwrite: true);
            File.Move(image, finalImage, overwrite: true); // publication
            Libc.FsyncDirectory(Path.GetDirectoryName(finalImage)!);
            progress?.Report(new RootDiskProgress(RootDiskPhase.Published, geometry.SizeBytes, tree.Inodes));
            return new RootDisk(digest, finalImage, finalJson, geometry.SizeBytes, recorded);
        }
        finally
        {
            await Task.Run(() => TryDeleteTree(work), CancellationToken.None).ConfigureAwait(false);
        }
    }

    private RootDisk? Read(Digest digest)
    {
        var image = PathOf(digest, ImageExtension);
        var json = PathOf(digest, ConfigExtension);
        try
        {
            if (!File.Exists(image))
            {
                return null;
            }
            var config = RootDiskConfig.Parse(File.ReadAllBytes(json));
            return config.ManifestDigest == digest
                ? new RootDisk(digest, image, json, new FileInfo(image).Length, config)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            // Deleted by a collection meanwhile, or a json this version cannot read: not a usable disk.
            return null;
        }
    }

    private static RootDiskProgress PublishedReport(RootDisk disk) => new(RootDiskPhase.Published, disk.SizeBytes, disk.Config.Inodes);

    private async Task<CacheLock> AcquireAsync(Digest digest, IProgress<RootDiskProgress>? progress, CancellationToken cancellationToken)
    {
        var path = PathOf(digest, LockExtension);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var delay = TimeSpan.FromMilliseconds(10);
        var reported = false;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (CacheLock.TryAcquire(path) is { } held)
            {
                return held;
            }
            if (!reported)
            {
                progress?.Report(new RootDiskProgress(RootDiskPhase.Waiting, 0, 0));
                reported = true;
            }
            // flock cannot be waited for asynchronously, nor cancelled while blocked: poll, backing off.
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxLockPoll.Ticks));
        }
    }

    private string CreateBuildDirectory(Digest digest)
    {
        Directory.CreateDirectory(CacheDirectory);
        if (!Directory.Exists(TempDirectory))
        {
            Directory.CreateDirectory(TempDirectory, PrivateDirectoryMode);
        }
        // Named after the digest so a collection can tell a running build (its lock is held) from junk.
        var work = Path.Combine(TempDirectory, $"{digest.Algorithm}-{digest.Hex}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work, PrivateDirectoryMode);
        File.SetLastWriteTimeUtc(work, _time.GetUtcNow().UtcDateTime);
        return work;
    }

    private static Digest? DigestOfBuild(string name)
    {
        var parts = name.Split('-');
        return parts.Length == 3 && Digest.TryParse($"{parts[0]}:{parts[1]}", out var digest, out _) ? digest : null;
    }

    private string PathOf(Digest digest, string extension) =>
        Path.Combine(CacheDirectory, digest.Algorithm, digest.Hex + extension);

    private void MarkUsed(string json)
    {
        try
        {
            File.SetLastWriteTimeUtc(json, _time.GetUtcNow().UtcDateTime);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not the owner (a cache built by another user): the disk is still usable, only its age is off.
        }
    }

    private static DateTime? LastWrite(string path) => Libc.LStat(path)?.LastWriteUtc;

    private static void WriteDurably(string path, byte[] bytes)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        file.Write(bytes);
        file.Flush(flushToDisk: true);
    }

    private static void FsyncFile(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Flush(flushToDisk: true);
    }

    private static long DeleteFile(string path)
    {
        var freed = Libc.LStat(path) is { } s && s.Links <= 1 ? s.AllocatedBytes : 0;
        File.Delete(path);
        return freed;
    }

    /// <summary>Best effort: what cannot be deleted now is old junk for a later collection, not a reason to fail a build.</summary>
    private static void TryDeleteTree(string path)
    {
        try
        {
            DeleteTree(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // left for CollectGarbage
        }
    }

    /// <summary>
    /// Deletes a tree without following symlinks; directories the process owns but cannot write
    /// (an image's 0555 directories, in an unprivileged build) are made writable first.
    /// </summary>
    /// <returns>The bytes freed on the host (a file's blocks count when its last link goes).</returns>
    internal static long DeleteTree(string path)
    {
        if (Libc.LStat(path) is not { } status)
        {
            return 0;
        }
        if (status.Type != Libc.TypeDirectory)
        {
            return DeleteFile(path);
        }
        const uint userAll = 0x1c0;
        if ((status.Mode & userAll) != userAll)
        {
            try
            {
                File.SetUnixFileMode(path, (UnixFileMode)(status.Permissions | userAll));
            }
            catch (UnauthorizedAccessException)
            {
                // not ours: the deletes below say why they fail
            }
        }
        long freed = status.AllocatedBytes;
        foreach (var child in Directory.EnumerateFileSystemEntries(path).ToList())
        {
            freed += DeleteTree(child);
        }
        Directory.Delete(path);
        return freed;
    }
}
