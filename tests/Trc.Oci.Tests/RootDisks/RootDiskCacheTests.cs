using System.Formats.Tar;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;
using Trc.Oci.Images;
using Trc.Oci.Layers;
using Trc.Oci.RootDisks;
using Trc.Oci.Tests.Layers;
using static Trc.Oci.Tests.RootDisks.RootDiskSandbox;

namespace Trc.Oci.Tests.RootDisks;

[SupportedOSPlatform("linux")]
public sealed class RootDiskCacheTests : IDisposable
{
    private const long MiB = 1L << 20;
    private static readonly byte[] Big = RandomBytes(3 * (int)MiB + 12345);
    private readonly RootDiskSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private static int O(string octal) => Convert.ToInt32(octal, 8);

    private static byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        new Random(42).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Regular files (empty, multi-MiB), nested directories, symlinks, a hard link, modes and owners.</summary>
    private static LayerBuilder ImageLayer() => new LayerBuilder()
        .Add(Entry(TarEntryType.Directory, "home/app/", O("750"), 1000, 1000))
        .Add(Entry(TarEntryType.RegularFile, "home/app/data.txt", O("640"), 1000, 1000, "secret"u8.ToArray()))
        .Add(Entry(TarEntryType.RegularFile, "usr/bin/tool", O("755"), data: "#!/bin/sh\necho hi\n"u8.ToArray()))
        .Add(Entry(TarEntryType.RegularFile, "usr/bin/su", O("4755"), data: "su"u8.ToArray()))
        .Add(Entry(TarEntryType.RegularFile, "empty", O("644"), data: []))
        .Add(Entry(TarEntryType.RegularFile, "var/big.bin", O("600"), 1000, 1000, Big))
        .Add(Entry(TarEntryType.RegularFile, "a/b/c/deep.txt", O("644"), data: "deep"u8.ToArray()))
        .Symlink("usr/bin/abs", "/usr/bin/tool")
        .Symlink("a/b/rel", "../../usr/bin/tool")
        .Symlink("long", "/" + new string('x', 100))
        .HardLink("usr/bin/tool-link", "usr/bin/tool");

    private void AssertImageContent(RootDisk disk)
    {
        var image = disk.ImagePath;
        var fsck = Ext4Inspector.Fsck(image);
        Assert.True(fsck.ExitCode == 0, fsck.Output);

        Assert.Equal(Big, Ext4Inspector.Cat(image, "/var/big.bin"));
        Assert.Equal("secret", Encoding.UTF8.GetString(Ext4Inspector.Cat(image, "/home/app/data.txt")));
        Assert.Equal("deep", Encoding.UTF8.GetString(Ext4Inspector.Cat(image, "/a/b/c/deep.txt")));
        Assert.Equal(0, Ext4Inspector.Stat(image, "/empty").Size);

        Assert.Equal(new Ext4Stat("directory", O("750"), 1000, 1000, 2, 4096, Ext4Inspector.Stat(image, "/home/app").Inode), Ext4Inspector.Stat(image, "/home/app"));
        var data = Ext4Inspector.Stat(image, "/home/app/data.txt");
        Assert.Equal((O("640"), 1000L, 1000L), (data.Mode, data.Uid, data.Gid));
        var big = Ext4Inspector.Stat(image, "/var/big.bin");
        Assert.Equal((O("600"), 1000L, 1000L, (long)Big.Length), (big.Mode, big.Uid, big.Gid, big.Size));
        var su = Ext4Inspector.Stat(image, "/usr/bin/su");
        Assert.Equal((O("4755"), 0L, 0L), (su.Mode, su.Uid, su.Gid));
        var root = Ext4Inspector.Stat(image, "/");
        Assert.Equal((O("755"), 0L, 0L), (root.Mode, root.Uid, root.Gid));

        var tool = Ext4Inspector.Stat(image, "/usr/bin/tool");
        var link = Ext4Inspector.Stat(image, "/usr/bin/tool-link");
        Assert.Equal(2, tool.Links);
        Assert.Equal(tool.Inode, link.Inode);
        Assert.Equal(O("755"), tool.Mode);

        Assert.Equal("/usr/bin/tool", Ext4Inspector.LinkTarget(image, "/usr/bin/abs"));
        Assert.Equal("../../usr/bin/tool", Ext4Inspector.LinkTarget(image, "/a/b/rel"));
        Assert.Equal("/" + new string('x', 100), Ext4Inspector.LinkTarget(image, "/long"));
        Assert.Equal("symlink", Ext4Inspector.Stat(image, "/a/b/rel").Type);

        var superblock = Ext4Inspector.Superblock(image);
        Assert.Contains("read-only", superblock);
        Assert.DoesNotContain("has_journal", superblock);
        Assert.Contains("trc-root", superblock);
        Assert.Contains(Ext4Image.FilesystemUuid(disk.ManifestDigest).ToString(), superblock);

        Assert.Equal((UnixFileMode)O("444"), File.GetUnixFileMode(image));
        Assert.Equal(new FileInfo(image).Length, disk.SizeBytes);
        Assert.InRange(disk.SizeBytes, disk.Config.ContentBytes, (long)(disk.Config.ContentBytes * 1.5) + 32 * MiB);
        Assert.Empty(_box.TempEntries());
    }

    [Fact]
    public async Task A_built_disk_holds_the_tree_with_modes_owners_and_links_and_is_clean()
    {
        var digest = DigestOf("image");
        var log = new ProgressLog();
        var disk = await _box.Cache().GetOrBuildAsync(digest, Config(),
            Apply(new LayerApplierOptions { ApplyOwnership = true, KeepSetuidSetgid = true }, ImageLayer()), log, CancellationToken.None);

        Assert.Equal(Path.Combine(_box.CacheDirectory, "sha256", digest.Hex + ".ext4"), disk.ImagePath);
        Assert.Equal(Path.Combine(_box.CacheDirectory, "sha256", digest.Hex + ".json"), disk.ConfigPath);
        AssertImageContent(disk);
        if (Environment.IsPrivilegedProcess)
        {
            Assert.Equal(0, disk.Config.InodesFixed); // the applier chowned the files: mkfs copied right owners
        }
        Assert.Equal([RootDiskPhase.Populating, RootDiskPhase.Sizing, RootDiskPhase.Formatting, RootDiskPhase.Published],
            log.Phases.Where(p => p != RootDiskPhase.FixingOwners)); // owners are fixed only when unprivileged
        var content = Big.Length + 6 + 18 + 2 + 4; // the hard link counted once
        var inodes = 1 + 8 + 6 + 3; // '/', directories, files, symlinks
        Assert.Equal(new RootDiskProgress(RootDiskPhase.Sizing, content, inodes), log.Reports[1]);
        Assert.Equal(new RootDiskProgress(RootDiskPhase.Formatting, disk.SizeBytes, inodes), log.Reports[2]);
        Assert.Equal(new RootDiskProgress(RootDiskPhase.Published, disk.SizeBytes, inodes), log.Reports[^1]);
        Assert.Equal((content, inodes), (disk.Config.ContentBytes, disk.Config.Inodes));
        Assert.Equal(["sha256/" + digest.Hex + ".ext4", "sha256/" + digest.Hex + ".json"], _box.CacheFiles());
        var again = _box.Cache().TryGet(digest)!;
        Assert.Equal((disk.ImagePath, disk.ConfigPath, disk.SizeBytes), (again.ImagePath, again.ConfigPath, again.SizeBytes));
        Assert.Equal(disk.Config.ToJson(), again.Config.ToJson());
    }

    [Fact]
    public async Task Owners_the_files_do_not_carry_are_set_on_the_disk_by_debugfs()
    {
        // The unprivileged path, forced: ownership only recorded, and unreadable entries made readable for mkfs.
        var layer = ImageLayer()
            .Add(Entry(TarEntryType.RegularFile, "etc/shadow", 0, data: "root:*:1::::::\n"u8.ToArray()))
            .Add(Entry(TarEntryType.Directory, "locked/", 0, 1000, 1000))
            .Add(Entry(TarEntryType.RegularFile, "locked/inside", O("644"), 1000, 1000, "in"u8.ToArray()));
        var log = new ProgressLog();
        var disk = await _box.Cache(new RootDiskOptions { AssumeUnprivileged = true }).GetOrBuildAsync(DigestOf("unprivileged"), Config(),
            Apply(new LayerApplierOptions { ApplyOwnership = false, KeepSetuidSetgid = true }, layer), log, CancellationToken.None);

        AssertImageContent(disk);
        var shadow = Ext4Inspector.Stat(disk.ImagePath, "/etc/shadow");
        Assert.Equal((0, 0L), (shadow.Mode, shadow.Uid));
        Assert.Equal("root:*:1::::::\n", Encoding.UTF8.GetString(Ext4Inspector.Cat(disk.ImagePath, "/etc/shadow")));
        var locked = Ext4Inspector.Stat(disk.ImagePath, "/locked");
        Assert.Equal((1000L, 1000L), (locked.Uid, locked.Gid));
        if (Environment.IsPrivilegedProcess)
        {
            // Truly unprivileged, the applier itself adds u+rwx to directories (to write into them).
            Assert.Equal(0, locked.Mode);
        }
        Assert.Equal("in", Encoding.UTF8.GetString(Ext4Inspector.Cat(disk.ImagePath, "/locked/inside")));
        Assert.True(disk.Config.InodesFixed >= 4, $"{disk.Config.InodesFixed} inodes fixed");
        Assert.Contains(new RootDiskProgress(RootDiskPhase.FixingOwners, disk.SizeBytes, disk.Config.InodesFixed), log.Reports);
    }

    [RootFact]
    public async Task An_entry_without_a_recorded_owner_belongs_to_root_and_a_recorded_one_keeps_its_owner()
    {
        var disk = await _box.Cache().GetOrBuildAsync(DigestOf("unrecorded"), Config(), (root, _) =>
        {
            File.WriteAllText(Path.Combine(root, "orphan"), "o");
            File.WriteAllText(Path.Combine(root, "kept"), "k");
            Ext4Inspector.Run("chown", "1234:1234", Path.Combine(root, "orphan"), Path.Combine(root, "kept"));
            var result = new LayerApplyResult();
            result.Owners.Add(new EntryOwner("kept", 1234, 1234));
            return Task.FromResult(result);
        }, null, CancellationToken.None);

        Assert.Equal(0L, Ext4Inspector.Stat(disk.ImagePath, "/orphan").Uid);
        Assert.Equal(1234L, Ext4Inspector.Stat(disk.ImagePath, "/kept").Uid);
        Assert.Equal(1, disk.Config.InodesFixed);
    }

    [Theory]
    [InlineData("with space")]
    [InlineData("quote\"d")]
    [InlineData("tab\there")]
    [InlineData("back\\slash")]
    [InlineData("ünïcödé ✓")]
    [InlineData("#hash")]
    [InlineData("-dash")]
    [InlineData("<12>")]
    public async Task Owners_are_set_through_debugfs_on_names_it_must_quote(string name)
    {
        var layer = new LayerBuilder()
            .Add(Entry(TarEntryType.Directory, name + "/", O("755"), 1000, 1001))
            .Add(Entry(TarEntryType.RegularFile, name + "/" + name, O("644"), 1002, 1003, "x"u8.ToArray()));
        var disk = await _box.Cache(new RootDiskOptions { AssumeUnprivileged = true }).GetOrBuildAsync(DigestOf(name), Config(),
            Apply(new LayerApplierOptions(), layer), null, CancellationToken.None);

        var dir = Ext4Inspector.Stat(disk.ImagePath, "/" + name);
        var file = Ext4Inspector.Stat(disk.ImagePath, "/" + name + "/" + name);
        Assert.Equal((1000L, 1001L, 1002L, 1003L), (dir.Uid, dir.Gid, file.Uid, file.Gid));
        Assert.Equal(0, Ext4Inspector.Fsck(disk.ImagePath).ExitCode);
    }

    [Fact]
    public async Task A_name_debugfs_cannot_express_fails_the_build_when_it_needs_an_owner_and_says_so()
    {
        var e = await Assert.ThrowsAsync<RootDiskException>(() => _box.Cache(new RootDiskOptions { AssumeUnprivileged = true })
            .GetOrBuildAsync(DigestOf("newline"), Config(), WriteFiles(chown: false, ("fine", 1000, 1000), ("bad\nname", 1000, 1000)), null, CancellationToken.None));

        Assert.Contains("bad\\x0aname", e.Message);
        Assert.Contains("newline", e.Message);
        Assert.Empty(_box.CacheFiles());
    }

    [RootFact]
    public async Task A_name_with_a_newline_is_fine_when_the_files_already_carry_their_owners()
    {
        var disk = await _box.Cache().GetOrBuildAsync(DigestOf("newline-root"), Config(),
            WriteFiles(chown: true, ("bad\nname", 1000, 1000)), null, CancellationToken.None);

        var listing = Ext4Inspector.Run("debugfs", "-R", "ls -l /", disk.ImagePath).Output;
        Assert.Contains(listing.Split('\n'), l => l.Contains("bad\\x0aname", StringComparison.Ordinal) && l.Contains(" 1000 ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_same_digest_requested_concurrently_is_built_once()
    {
        var digest = DigestOf("shared");
        var calls = 0;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task<LayerApplyResult> Populate(string root, CancellationToken ct)
        {
            Interlocked.Increment(ref calls);
            await release.Task.WaitAsync(ct);
            return new LayerApplier(root).Apply(new LayerBuilder().File("x", "y").Build(), ct);
        }
        // Two cache instances hold separate open files of the lock, as two processes would: flock
        // treats them alike.
        var first = _box.Cache();
        var second = _box.Cache();
        var waiting = new ProgressLog();
        var a = first.GetOrBuildAsync(digest, Config(), Populate, null, CancellationToken.None);
        await Eventually(() => Volatile.Read(ref calls) == 1);
        var b = second.GetOrBuildAsync(digest, Config(), Populate, waiting, CancellationToken.None);
        var c = first.GetOrBuildAsync(digest, Config(), Populate, null, CancellationToken.None);
        await Eventually(() => waiting.Phases.Contains(RootDiskPhase.Waiting));
        release.SetResult();
        var disks = await Task.WhenAll(a, b, c).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(1, calls);
        Assert.Single(disks.Select(d => d.ImagePath).Distinct());
        Assert.Equal([RootDiskPhase.Waiting, RootDiskPhase.Published], waiting.Phases);
        Assert.Equal(["sha256/" + digest.Hex + ".ext4", "sha256/" + digest.Hex + ".json"], _box.CacheFiles());
    }

    [Fact]
    public async Task Different_digests_build_in_parallel()
    {
        var started = new[] { new TaskCompletionSource(), new TaskCompletionSource() };
        Func<string, CancellationToken, Task<LayerApplyResult>> Populate(int me) => async (root, ct) =>
        {
            started[me].TrySetResult();
            await started[1 - me].Task.WaitAsync(TimeSpan.FromSeconds(20), ct); // serialised builds would time out here
            return new LayerApplier(root).Apply(new LayerBuilder().File("me", me.ToString(System.Globalization.CultureInfo.InvariantCulture)).Build(), ct);
        };
        var cache = _box.Cache();
        var disks = await Task.WhenAll(
            cache.GetOrBuildAsync(DigestOf("one"), Config(), Populate(0), null, CancellationToken.None),
            cache.GetOrBuildAsync(DigestOf("two"), Config(), Populate(1), null, CancellationToken.None));

        Assert.Equal("0", Encoding.UTF8.GetString(Ext4Inspector.Cat(disks[0].ImagePath, "/me")));
        Assert.Equal("1", Encoding.UTF8.GetString(Ext4Inspector.Cat(disks[1].ImagePath, "/me")));
    }

    [Fact]
    public async Task A_failing_populate_publishes_nothing_and_leaves_no_temporary_files()
    {
        var cache = _box.Cache();
        var digest = DigestOf("fails");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => cache.GetOrBuildAsync(digest, Config(), (root, _) =>
        {
            Directory.CreateDirectory(Path.Combine(root, "half"));
            File.WriteAllText(Path.Combine(root, "half", "written"), "x");
            throw new InvalidOperationException("registry went away");
        }, null, CancellationToken.None));

        Assert.Equal("registry went away", e.Message);
        Assert.Null(cache.TryGet(digest));
        Assert.Empty(_box.CacheFiles());
        Assert.Empty(_box.TempEntries());
    }

    [Fact]
    public async Task A_cancelled_build_publishes_nothing_and_leaves_no_temporary_files()
    {
        using var cts = new CancellationTokenSource();
        var cache = _box.Cache();
        var build = cache.GetOrBuildAsync(DigestOf("cancelled"), Config(), async (root, ct) =>
        {
            File.WriteAllText(Path.Combine(root, "partial"), "x");
            await cts.CancelAsync();
            await Task.Delay(Timeout.Infinite, ct);
            return new LayerApplyResult();
        }, null, cts.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => build);
        Assert.Empty(_box.CacheFiles());
        Assert.Empty(_box.TempEntries());
    }

    [Fact]
    public async Task The_configuration_is_recorded_as_snake_case_json_and_read_back()
    {
        var run = new ContainerConfig
        {
            Entrypoint = ["/bin/app", "--serve"],
            Cmd = ["--port", "8080"],
            Env = ["PATH=/usr/local/bin:/usr/bin", "GREETING=hello world"],
            WorkingDir = "/srv/app",
            User = "1000:1000",
        };
        var digest = DigestOf("config");
        var layer = new LayerBuilder().File("bin/app", "#!").Fifo("dev/initctl");
        var disk = await _box.Cache().GetOrBuildAsync(digest, Config(run) with { Variant = "v8", Architecture = "arm64" },
            Apply(new LayerApplierOptions(), layer), null, CancellationToken.None);

        using var json = JsonDocument.Parse(File.ReadAllBytes(disk.ConfigPath));
        var r = json.RootElement;
        Assert.Equal(1, r.GetProperty("format").GetInt32());
        Assert.Equal(digest.ToString(), r.GetProperty("manifest_digest").GetString());
        Assert.Equal("arm64", r.GetProperty("architecture").GetString());
        Assert.Equal("v8", r.GetProperty("variant").GetString());
        Assert.Equal(["/bin/app", "--serve"], r.GetProperty("entrypoint").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["--port", "8080"], r.GetProperty("cmd").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("GREETING=hello world", r.GetProperty("env")[1].GetString());
        Assert.Equal("/srv/app", r.GetProperty("working_dir").GetString());
        Assert.Equal("1000:1000", r.GetProperty("user").GetString());
        Assert.Equal(Start, r.GetProperty("built_at").GetDateTimeOffset());
        Assert.Equal(2, r.GetProperty("content_bytes").GetInt64());
        Assert.Equal(1, r.GetProperty("skipped_count").GetInt32());
        Assert.Equal("Fifo", r.GetProperty("skipped")[0].GetProperty("type").GetString());
        Assert.Equal("dev/initctl", r.GetProperty("skipped")[0].GetProperty("name").GetString());
        Assert.Equal(Ext4Image.FilesystemUuid(digest), r.GetProperty("filesystem_uuid").GetGuid());

        var read = _box.Cache().TryGet(digest)!.Config;
        Assert.Equal(disk.Config.ToJson(), read.ToJson());
        Assert.Equal(run.Entrypoint, read.Entrypoint);
        Assert.Equal(run.Env, read.Env);
        Assert.Equal(3, read.Inodes); // '/', bin, bin/app: the FIFO is skipped before its directory is made
    }

    [Fact]
    public async Task An_image_without_run_defaults_records_nulls()
    {
        var disk = await _box.Cache().GetOrBuildAsync(DigestOf("bare"), Config(), OneFile(), null, CancellationToken.None);
        using var json = JsonDocument.Parse(File.ReadAllBytes(disk.ConfigPath));
        foreach (var name in new[] { "entrypoint", "cmd", "env", "working_dir", "user", "variant" })
        {
            Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty(name).ValueKind);
        }
        Assert.Empty(json.RootElement.GetProperty("skipped").EnumerateArray());
    }

    [Fact]
    public async Task Mkfs_running_out_of_space_is_retried_once_at_twice_the_size()
    {
        var log = new ProgressLog();
        var options = new RootDiskOptions { HeadroomFraction = 0, MinimumHeadroomBytes = 0, FirstAttemptScale = 0.5 };
        var layer = new LayerBuilder().Add(Entry(TarEntryType.RegularFile, "big", O("644"), data: RandomBytes(8 * (int)MiB)));
        var disk = await _box.Cache(options).GetOrBuildAsync(DigestOf("retry"), Config(), Apply(new LayerApplierOptions(), layer), log, CancellationToken.None);

        var formats = log.Reports.Where(r => r.Phase == RootDiskPhase.Formatting).ToList();
        Assert.Equal(2, formats.Count);
        Assert.Equal(formats[0].Bytes * 2, formats[1].Bytes);
        Assert.Equal(formats[1].Bytes, disk.SizeBytes);
        Assert.Equal(0, Ext4Inspector.Fsck(disk.ImagePath).ExitCode);
        Assert.Empty(_box.TempEntries());
    }

    [Fact]
    public async Task Mkfs_out_of_space_twice_is_an_error_with_its_output()
    {
        var options = new RootDiskOptions { HeadroomFraction = 0, MinimumHeadroomBytes = 0, FirstAttemptScale = 0.1 };
        var layer = new LayerBuilder().Add(Entry(TarEntryType.RegularFile, "big", O("644"), data: RandomBytes(8 * (int)MiB)));
        var e = await Assert.ThrowsAsync<RootDiskException>(() => _box.Cache(options).GetOrBuildAsync(DigestOf("too-small"), Config(),
            Apply(new LayerApplierOptions(), layer), null, CancellationToken.None));

        Assert.Contains("Could not allocate", e.ToolOutput);
        Assert.Contains("mkfs.ext4 failed", e.Message);
        Assert.Contains("attempt 2", e.Message);
        Assert.Empty(_box.CacheFiles());
    }

    [Fact]
    public async Task A_missing_mkfs_names_the_package_to_install()
    {
        var e = await Assert.ThrowsAsync<RootDiskException>(() => _box.Cache(new RootDiskOptions { MkfsPath = "/nonexistent/mkfs.ext4" })
            .GetOrBuildAsync(DigestOf("no-mkfs"), Config(), OneFile(), null, CancellationToken.None));

        Assert.Contains("mkfs.ext4", e.Message);
        Assert.Contains("e2fsprogs", e.Message);
        Assert.Empty(_box.CacheFiles());
    }

    [Fact]
    public async Task A_failing_tool_is_reported_with_its_standard_error()
    {
        var fake = Path.Combine(_box.Base, "debugfs");
        File.WriteAllText(fake, "#!/bin/sh\necho 'debugfs: disk on fire' >&2\nexit 3\n");
        File.SetUnixFileMode(fake, (UnixFileMode)O("755"));
        var e = await Assert.ThrowsAsync<RootDiskException>(() => _box.Cache(new RootDiskOptions { DebugfsPath = fake })
            .GetOrBuildAsync(DigestOf("bad-debugfs"), Config(), OneFile(), null, CancellationToken.None));

        Assert.Contains("exit 3", e.Message);
        Assert.Contains("disk on fire", e.Message);
        Assert.Equal("debugfs: disk on fire", e.ToolOutput?.Trim());
        Assert.Empty(_box.CacheFiles());
        Assert.Empty(_box.TempEntries());
    }

    [Fact]
    public async Task Get_returns_the_published_disk_without_calling_populate_and_marks_it_used()
    {
        var cache = _box.Cache();
        var digest = DigestOf("twice");
        var first = await cache.GetOrBuildAsync(digest, Config(), OneFile(), null, CancellationToken.None);
        _box.Time.Advance(TimeSpan.FromDays(3));
        var log = new ProgressLog();
        var second = await cache.GetOrBuildAsync(digest, Config(), (_, _) => throw new InvalidOperationException("not again"), log, CancellationToken.None);

        Assert.Equal(first.ImagePath, second.ImagePath);
        Assert.Equal([new RootDiskProgress(RootDiskPhase.Published, first.SizeBytes, 3)], log.Reports);
        Assert.Equal(_box.Time.Now.UtcDateTime, File.GetLastWriteTimeUtc(first.ConfigPath));
        Assert.Null(cache.TryGet(DigestOf("never built")));
    }

    [Fact]
    public async Task A_disk_whose_json_is_unreadable_is_rebuilt()
    {
        var cache = _box.Cache();
        var digest = DigestOf("corrupt");
        var disk = await cache.GetOrBuildAsync(digest, Config(), OneFile("one"), null, CancellationToken.None);
        File.SetUnixFileMode(disk.ConfigPath, (UnixFileMode)O("644"));
        File.WriteAllText(disk.ConfigPath, "{\"format\": 99}");

        Assert.Null(cache.TryGet(digest));
        var rebuilt = await cache.GetOrBuildAsync(digest, Config(), OneFile("two"), null, CancellationToken.None);
        Assert.Equal("two", Encoding.UTF8.GetString(Ext4Inspector.Cat(rebuilt.ImagePath, "/etc/hello")));
        Assert.NotNull(cache.TryGet(digest));
    }

    private static async Task Eventually(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 20 s");
            await Task.Delay(10);
        }
    }
}
