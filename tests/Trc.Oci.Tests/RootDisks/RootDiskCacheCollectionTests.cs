using System.Diagnostics;
using System.Runtime.Versioning;
using Trc.Oci.Images;
using Trc.Oci.RootDisks;
using static Trc.Oci.Tests.RootDisks.RootDiskSandbox;

namespace Trc.Oci.Tests.RootDisks;

/// <summary>Garbage collection, and locks held by another process (util-linux flock).</summary>
[SupportedOSPlatform("linux")]
public sealed class RootDiskCacheCollectionTests : IDisposable
{
    private readonly RootDiskSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private string LockPath(Digest digest) => Path.Combine(_box.CacheDirectory, digest.Algorithm, digest.Hex + ".lock");

    [Fact]
    public async Task Collection_deletes_old_disks_not_kept_and_keeps_kept_recent_and_locked_ones()
    {
        var cache = _box.Cache();
        Digest kept = DigestOf("kept"), recent = DigestOf("recent"), old = DigestOf("old"), locked = DigestOf("locked"), building = DigestOf("building");
        foreach (var digest in new[] { kept, recent, old, locked })
        {
            await cache.GetOrBuildAsync(digest, Config(), OneFile(digest.Hex), null, CancellationToken.None);
        }
        var oldImage = cache.TryGet(old)!.ImagePath;
        _box.Time.Advance(TimeSpan.FromHours(2));
        Assert.NotNull(cache.TryGet(recent)); // used now

        // tmp/: junk from a crash (old), a fresh entry, and an old build whose lock is held (still running).
        var leftover = Directory.CreateDirectory(Path.Combine(_box.TempDirectory, "sha256-" + old.Hex + "-0123456789abcdef0123456789abcdef")).FullName;
        File.WriteAllText(Path.Combine(leftover, "disk.ext4"), new string('x', 10000));
        Directory.SetLastWriteTimeUtc(leftover, Start.UtcDateTime);
        var fresh = Directory.CreateDirectory(Path.Combine(_box.TempDirectory, "fresh")).FullName;
        Directory.SetLastWriteTimeUtc(fresh, _box.Time.Now.UtcDateTime);
        var running = Directory.CreateDirectory(Path.Combine(_box.TempDirectory, "sha256-" + building.Hex + "-fedcba9876543210fedcba9876543210")).FullName;
        Directory.SetLastWriteTimeUtc(running, Start.UtcDateTime);
        // A json without its disk: a crash between the two renames.
        var strayJson = Path.Combine(_box.CacheDirectory, "sha256", DigestOf("stray").Hex + ".json");
        File.WriteAllText(strayJson, "{}");
        File.SetLastWriteTimeUtc(strayJson, Start.UtcDateTime);

        RootDiskGcResult result;
        using (ExternalLock.Hold(LockPath(locked)))
        using (ExternalLock.Hold(LockPath(building)))
        {
            result = cache.CollectGarbage(new HashSet<Digest> { kept }, TimeSpan.FromHours(1));
        }

        Assert.Equal(1, result.DisksDeleted);
        Assert.Equal(3, result.DisksKept);
        Assert.Equal(2, result.TempEntriesDeleted);
        Assert.InRange(result.BytesFreed, 10000, 64L << 20);
        Assert.False(File.Exists(oldImage));
        Assert.Null(cache.TryGet(old));
        Assert.Equal(["fresh", Path.GetFileName(running)], _box.TempEntries());
        Assert.Equal(
            new[] { kept, recent, locked }.SelectMany(d => new[] { $"sha256/{d.Hex}.ext4", $"sha256/{d.Hex}.json" })
                .Append($"sha256/{building.Hex}.lock").Append($"sha256/{locked.Hex}.lock").Order(StringComparer.Ordinal),
            _box.CacheFiles());

        // Released, the locked disk goes too (its lock file with it); the recent one stays until it is old.
        var again = cache.CollectGarbage(new HashSet<Digest> { kept }, TimeSpan.FromHours(1));
        Assert.Equal((1, 2, 2), (again.DisksDeleted, again.DisksKept, again.TempEntriesDeleted)); // temp: the old build and its lock file
        Assert.Null(cache.TryGet(locked));
        Assert.NotNull(cache.TryGet(kept));
        Assert.NotNull(cache.TryGet(recent));
        Assert.Equal(["fresh"], _box.TempEntries());
    }

    [Fact]
    public async Task Collection_with_nothing_old_deletes_nothing()
    {
        var cache = _box.Cache();
        await cache.GetOrBuildAsync(DigestOf("a"), Config(), OneFile(), null, CancellationToken.None);
        var result = cache.CollectGarbage(new HashSet<Digest>(), TimeSpan.FromMinutes(5));
        Assert.Equal(new RootDiskGcResult(0, 1, 0, 0), result);
        Assert.Equal(new RootDiskGcResult(0, 0, 0, 0), new RootDiskCache(Path.Combine(_box.Base, "never-used")).CollectGarbage(new HashSet<Digest>(), TimeSpan.Zero));
    }

    [Fact]
    public async Task Listing_the_published_disks_does_not_mark_them_used()
    {
        var cache = _box.Cache();
        var digests = new[] { DigestOf("x"), DigestOf("y") }.OrderBy(d => d.Hex, StringComparer.Ordinal).ToArray();
        foreach (var digest in digests)
        {
            await cache.GetOrBuildAsync(digest, Config(), OneFile(), null, CancellationToken.None);
        }
        _box.Time.Advance(TimeSpan.FromDays(1));

        Assert.Equal(digests, cache.Published().Select(d => d.ManifestDigest));
        Assert.All(cache.Published(), d => Assert.Equal(Start.UtcDateTime, File.GetLastWriteTimeUtc(d.ConfigPath)));
        Assert.Equal(2, cache.CollectGarbage(new HashSet<Digest>(), TimeSpan.FromHours(1)).DisksDeleted);
        Assert.Empty(cache.Published());
    }

    [Fact]
    public async Task A_build_waits_for_a_lock_held_by_another_process_then_builds()
    {
        var cache = _box.Cache();
        var digest = DigestOf("contended");
        Directory.CreateDirectory(Path.GetDirectoryName(LockPath(digest))!);
        var log = new ProgressLog();
        Task<RootDisk> build;
        using (ExternalLock.Hold(LockPath(digest)))
        {
            build = cache.GetOrBuildAsync(digest, Config(), OneFile(), log, CancellationToken.None);
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!log.Phases.Contains(RootDiskPhase.Waiting))
            {
                Assert.True(DateTime.UtcNow < deadline, "never reported waiting");
                await Task.Delay(10);
            }
            await Task.Delay(200);
            Assert.False(build.IsCompleted);
        }
        var disk = await build.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(0, Ext4Inspector.Fsck(disk.ImagePath).ExitCode);
        Assert.Equal([RootDiskPhase.Waiting, RootDiskPhase.Populating], log.Phases.Take(2));
        Assert.Equal([$"sha256/{digest.Hex}.ext4", $"sha256/{digest.Hex}.json"], _box.CacheFiles());
    }

    /// <summary>An exclusive flock held by a util-linux <c>flock</c> process until disposed.</summary>
    private sealed class ExternalLock : IDisposable
    {
        private readonly Process _process;

        private ExternalLock(Process process) => _process = process;

        public static ExternalLock Hold(string path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var start = new ProcessStartInfo("flock") { RedirectStandardOutput = true };
            foreach (var argument in new[] { "--exclusive", "--close", path, "-c", "echo locked; exec sleep 600" })
            {
                start.ArgumentList.Add(argument);
            }
            var process = Process.Start(start)!;
            Assert.Equal("locked", process.StandardOutput.ReadLine());
            return new ExternalLock(process);
        }

        public void Dispose()
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            _process.Dispose();
        }
    }
}
