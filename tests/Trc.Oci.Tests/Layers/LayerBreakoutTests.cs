using System.Formats.Tar;
using System.Runtime.Versioning;

namespace Trc.Oci.Tests.Layers;

/// <summary>Each hostile layer either applies inside the root or is refused; the canary outside never changes.</summary>
[SupportedOSPlatform("linux")]
public sealed class LayerBreakoutTests : IDisposable
{
    private readonly LayerSandbox _box = new();

    public void Dispose() => _box.Dispose();

    public static TheoryData<string> RefusedCases => [.. Refused.Keys];

    private static readonly Dictionary<string, Func<LayerBuilder>> Refused = new()
    {
        ["dotdot"] = () => new LayerBuilder().File("../escape", "x"),
        ["dotdot-inside"] = () => new LayerBuilder().File("a/../../escape", "x"),
        ["hardlink-dotdot"] = () => new LayerBuilder().HardLink("h", "../outside/canary"),
        ["whiteout-dotdot-top"] = () => new LayerBuilder().File(".wh..."),
        ["whiteout-dotdot-nested"] = () => new LayerBuilder().Dir("a").File("a/.wh..."),
        ["whiteout-escaping-name"] = () => new LayerBuilder().File("../.wh.outside"),
        ["symlink-named-dot"] = () => new LayerBuilder().Symlink(".", "../outside"),
        ["symlink-named-slash"] = () => new LayerBuilder().Symlink("/", "../outside"),
        ["file-named-slash"] = () => new LayerBuilder().File("/", "x"),
        ["symlink-loop"] = () => new LayerBuilder().Symlink("l1", "l2").Symlink("l2", "l1").File("l1/x", "x"),
        ["hardlink-to-root"] = () => new LayerBuilder().HardLink("h", "."),
    };

    [Theory]
    [MemberData(nameof(RefusedCases))]
    public void Hostile_entry_is_refused_and_nothing_outside_changes(string name)
    {
        var e = _box.TryApply(Refused[name]().Build());
        Assert.NotNull(e);
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        _box.AssertNothingOutsideRootChanged();
    }

    [Fact]
    public void Symlink_loop_error_says_so()
    {
        var e = _box.TryApply(Refused["symlink-loop"]().Build());
        Assert.Contains("symbolic links", e!.Message);
        Assert.Equal("l1/x", e.EntryName);
    }

    [Fact]
    public void Relative_symlink_out_of_the_root_is_clamped_to_the_root()
    {
        Assert.Null(_box.TryApply(new LayerBuilder().Symlink("evil", "../outside").File("evil/x", "x").Build()));
        Assert.Equal("x", File.ReadAllText(_box.InRoot("outside/x")));
        _box.AssertNothingOutsideRootChanged();
    }

    [Fact]
    public void Absolute_symlink_is_relative_to_the_root()
    {
        Assert.Null(_box.TryApply(new LayerBuilder().Symlink("evil", "/").File("evil/etc/x", "x").Build()));
        Assert.Equal("x", File.ReadAllText(_box.InRoot("etc/x")));
        _box.AssertNothingOutsideRootChanged();
    }

    [Fact]
    public void Chained_symlinks_stay_in_the_root()
    {
        Assert.Null(_box.TryApply(new LayerBuilder().Symlink("a", "b").Symlink("b", "../..").File("a/x", "x").Build()));
        Assert.Equal("x", File.ReadAllText(_box.InRoot("x")));
        _box.AssertNothingOutsideRootChanged();
    }

    [Fact]
    public void Hard_link_to_an_outside_pointing_symlink_links_the_symlink_itself()
    {
        var e = _box.TryApply(new LayerBuilder()
            .Symlink("s", "../outside/canary")
            .HardLink("h", "s")
            .File("h/x", "x") // h is a symlink resolved in the root: root/outside/canary is missing, so refused or inside
            .Build());
        Assert.True(e is null || e.EntryName == "h/x");
        Assert.Equal("../outside/canary", new FileInfo(_box.InRoot("h")).LinkTarget);
        _box.AssertNothingOutsideRootChanged();
    }

    [Theory]
    [InlineData(TarEntryType.Directory)]
    [InlineData(TarEntryType.RegularFile)]
    public void Chmod_never_goes_through_a_symlink(TarEntryType type)
    {
        var layer = new LayerBuilder().Symlink("s", "../outside/canary")
            .Add(new PaxTarEntry(type, "s") { Mode = (UnixFileMode)0x1ff })
            .Build();
        Assert.Null(_box.TryApply(layer));
        Assert.Equal((UnixFileMode)0x1ff, File.GetUnixFileMode(_box.InRoot("s")));
        _box.AssertNothingOutsideRootChanged();
    }

    [Fact]
    public void Writing_over_a_symlink_replaces_the_symlink()
    {
        Assert.Null(_box.TryApply(
            new LayerBuilder().Symlink("s", _box.Canary).Build(),
            new LayerBuilder().File("s", "new").Build()));
        Assert.Null(new FileInfo(_box.InRoot("s")).LinkTarget);
        _box.AssertNothingOutsideRootChanged();
    }

    [Fact]
    public void Entry_with_an_empty_name_is_refused()
    {
        var bytes = new LayerBuilder().Add(new UstarTarEntry(TarEntryType.RegularFile, "x")).Bytes();
        bytes[0] = 0; // name field now empty
        var sum = 0;
        for (var i = 0; i < 512; i++)
        {
            sum += i is >= 148 and < 156 ? (byte)' ' : bytes[i];
        }
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(bytes, 148);
        Assert.NotNull(_box.TryApply(new MemoryStream(bytes)));
        _box.AssertNothingOutsideRootChanged();
    }
}
