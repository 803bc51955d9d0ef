using System.Formats.Tar;
using System.Runtime.Versioning;
using Trc.Oci.Layers;

namespace Trc.Oci.Tests.Layers;

[SupportedOSPlatform("linux")]
public sealed class LayerApplierTests : IDisposable
{
    private readonly LayerSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private static UnixFileMode Mode(int octal) => (UnixFileMode)octal;

    [Fact]
    public void Files_directories_and_modes_are_written()
    {
        var layer = new LayerBuilder()
            .Dir("usr/", Mode(0x1c0)) // 0700
            .File("usr/bin/tool", "hello", Mode(0x9ed), uid: 1000, gid: 1001) // 04755
            .File("/etc/escape", "abs")
            .Build();
        var result = new LayerApplier(_box.Root).Apply(layer);

        Assert.Equal("hello", File.ReadAllText(_box.InRoot("usr/bin/tool")));
        Assert.Equal(Mode(0x1ed), File.GetUnixFileMode(_box.InRoot("usr/bin/tool"))); // setuid dropped
        Assert.Equal(Mode(0x1c0), File.GetUnixFileMode(_box.InRoot("usr")));
        Assert.Equal("abs", File.ReadAllText(_box.InRoot("etc/escape"))); // absolute names are root-relative
        Assert.Contains(new EntryOwner("usr/bin/tool", 1000, 1001), result.Owners);
        Assert.Equal(5 + 3, result.BytesWritten);
        _box.AssertNothingOutsideRootChanged();
    }

    [Fact]
    public void Setuid_is_kept_when_the_option_allows_it()
    {
        new LayerApplier(_box.Root, new LayerApplierOptions { KeepSetuidSetgid = true })
            .Apply(new LayerBuilder().File("su", "x", Mode(0xded)).Build()); // 06755
        Assert.Equal(Mode(0xded), File.GetUnixFileMode(_box.InRoot("su")));
    }

    [Fact]
    public void Symlinks_are_stored_as_text_and_hard_links_share_the_inode()
    {
        new LayerApplier(_box.Root).Apply(new LayerBuilder()
            .File("a", "data")
            .Symlink("s", "/nowhere/../a")
            .HardLink("h", "a")
            .Fifo("dev/fifo")
            .Build());
        Assert.Equal("/nowhere/../a", new FileInfo(_box.InRoot("s")).LinkTarget);
        File.WriteAllText(_box.InRoot("h"), "changed");
        Assert.Equal("changed", File.ReadAllText(_box.InRoot("a")));
    }

    [Fact]
    public void Device_nodes_and_fifos_are_skipped_and_reported()
    {
        var result = new LayerApplier(_box.Root).Apply(new LayerBuilder()
            .Fifo("dev/fifo")
            .Add(new PaxTarEntry(TarEntryType.CharacterDevice, "dev/null") { DeviceMajor = 1, DeviceMinor = 3 })
            .Build());
        Assert.Equal(["dev/fifo", "dev/null"], result.Skipped.Select(s => s.Name));
        Assert.False(File.Exists(_box.InRoot("dev/null")));
    }

    [Fact]
    public void Whiteouts_delete_lower_layer_entries_and_are_not_written()
    {
        var lower = new LayerBuilder().File("keep", "k").File("gone", "g").File("d/x", "x").Symlink("link", "/keep").Build();
        var upper = new LayerBuilder().File(".wh.gone").File(".wh.d").File(".wh.link").Build();
        new LayerApplier(_box.Root).ApplyAll([lower, upper]);
        Assert.Equal(["keep"], Directory.EnumerateFileSystemEntries(_box.Root).Select(Path.GetFileName));
    }

    [Fact]
    public void Opaque_whiteout_empties_lower_content_but_keeps_the_same_layer()
    {
        var lower = new LayerBuilder().File("d/old", "o").File("d/sub/old", "o").File("other", "o").Build();
        var upper = new LayerBuilder().File("d/new", "n").File("d/sub/new", "n").File("d/.wh..wh..opq").Build();
        new LayerApplier(_box.Root).ApplyAll([lower, upper]);
        Assert.True(File.Exists(_box.InRoot("d/new")));
        Assert.True(File.Exists(_box.InRoot("d/sub/new")));
        Assert.False(File.Exists(_box.InRoot("d/old")));
        Assert.False(File.Exists(_box.InRoot("d/sub/old")));
        Assert.False(File.Exists(_box.InRoot("d/.wh..wh..opq")));
        Assert.True(File.Exists(_box.InRoot("other")));
    }

    [Fact]
    public void A_whiteout_in_the_same_layer_does_not_hide_that_layers_file()
    {
        new LayerApplier(_box.Root).Apply(new LayerBuilder().File("f", "x").File(".wh.f").Build());
        Assert.True(File.Exists(_box.InRoot("f")));
    }

    [Fact]
    public void Gzip_layers_are_detected()
    {
        new LayerApplier(_box.Root).Apply(new LayerBuilder().File("z/file", "gz").BuildGzip());
        Assert.Equal("gz", File.ReadAllText(_box.InRoot("z/file")));
    }

    [Fact]
    public void Parent_symlinks_inside_the_root_are_followed()
    {
        new LayerApplier(_box.Root).ApplyAll([
            new LayerBuilder().Dir("usr/lib").Symlink("lib", "usr/lib").Build(),
            new LayerBuilder().File("lib/libc.so", "c").Build()]);
        Assert.Equal("c", File.ReadAllText(_box.InRoot("usr/lib/libc.so")));
    }

    [Fact]
    public void Caps_on_entries_and_bytes_are_enforced()
    {
        var tooMany = Assert.Throws<LayerException>(() => new LayerApplier(_box.Root, new LayerApplierOptions { MaxEntries = 1 })
            .Apply(new LayerBuilder().File("a").File("b").Build()));
        Assert.Contains("entries", tooMany.Message);
        var tooBig = Assert.Throws<LayerException>(() => new LayerApplier(_box.Root, new LayerApplierOptions { MaxTotalBytes = 3 })
            .Apply(new LayerBuilder().File("big", "four").Build()));
        Assert.Contains("cap", tooBig.Message);
    }

    [Fact]
    public void Truncated_and_corrupt_tars_give_a_layer_exception()
    {
        var bytes = new LayerBuilder().File("a", new string('x', 2000)).Bytes();
        for (var cut = 1; cut < bytes.Length; cut += 97)
        {
            using var box = new LayerSandbox();
            var e = box.TryApply(new MemoryStream(bytes[..cut]));
            // Cuts inside the end-of-archive padding may still read as a complete archive.
            if (cut < 512 + 2048)
            {
                Assert.NotNull(e);
            }
        }
        var corrupt = (byte[])bytes.Clone();
        corrupt[148] ^= 0x11; // checksum field of the first header
        Assert.NotNull(_box.TryApply(new MemoryStream(corrupt)));
    }

    [Fact]
    public void Zstd_layers_are_refused_clearly()
    {
        var e = _box.TryApply(new MemoryStream([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]));
        Assert.Contains("zstd", e!.Message);
    }
}
