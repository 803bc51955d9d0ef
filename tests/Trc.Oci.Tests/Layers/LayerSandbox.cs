using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Trc.Oci.Layers;

namespace Trc.Oci.Tests.Layers;

/// <summary>
/// A temp tree: base/sandbox/root (the layer root) and base/sandbox/outside/canary. Escapes by one or
/// two '..' land in sandbox or base, which <see cref="AssertNothingOutsideRootChanged"/> lists.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LayerSandbox : IDisposable
{
    private static readonly DateTime CanaryTime = new(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);
    private const UnixFileMode CanaryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
    private readonly string[] _before;

    public LayerSandbox()
    {
        Base = Path.Combine(Path.GetTempPath(), "trc-layers-" + Guid.NewGuid().ToString("N"));
        Sandbox = Path.Combine(Base, "sandbox");
        Root = Path.Combine(Sandbox, "root");
        Outside = Path.Combine(Sandbox, "outside");
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(Outside);
        Canary = Path.Combine(Outside, "canary");
        File.WriteAllText(Canary, "canary");
        File.SetUnixFileMode(Canary, CanaryMode);
        File.SetLastWriteTimeUtc(Canary, CanaryTime);
        _before = OutsideListing();
    }

    public string Base { get; }
    public string Sandbox { get; }
    public string Root { get; }
    public string Outside { get; }
    public string Canary { get; }

    public string InRoot(string relative) => Path.Combine(Root, relative);

    /// <summary>Applies the layers; returns the LayerException, or null when they applied.</summary>
    public LayerException? TryApply(params Stream[] layers)
    {
        try
        {
            new LayerApplier(Root).ApplyAll(layers);
            return null;
        }
        catch (LayerException e)
        {
            return e;
        }
    }

    public void AssertNothingOutsideRootChanged()
    {
        Assert.Equal("canary", File.ReadAllText(Canary));
        Assert.Equal(CanaryMode, File.GetUnixFileMode(Canary));
        Assert.Equal(CanaryTime, File.GetLastWriteTimeUtc(Canary));
        Assert.Equal(_before, OutsideListing());
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), "escape")));
    }

    // A hand walk that never enters the root nor follows a symlink: the root may hold 'evil -> /'.
    private string[] OutsideListing()
    {
        var found = new List<string>();
        void Walk(string dir)
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(dir))
            {
                if (entry == Root)
                {
                    continue;
                }
                found.Add(entry);
                if (new FileInfo(entry).Attributes is var a && a.HasFlag(FileAttributes.Directory) && !a.HasFlag(FileAttributes.ReparsePoint))
                {
                    Walk(entry);
                }
            }
        }
        Walk(Base);
        return [.. found.Order(StringComparer.Ordinal)];
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Base, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp dir left behind is not a test failure
        }
    }
}

/// <summary>Builds a layer tar in memory.</summary>
public sealed class LayerBuilder
{
    private readonly List<TarEntry> _entries = [];

    public LayerBuilder File(string name, string content = "", UnixFileMode mode = (UnixFileMode)0x1a4, int uid = 0, int gid = 0)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            Mode = mode,
            Uid = uid,
            Gid = gid,
        };
        _entries.Add(e);
        return this;
    }

    public LayerBuilder Dir(string name, UnixFileMode mode = (UnixFileMode)0x1ed) =>
        Add(new PaxTarEntry(TarEntryType.Directory, name) { Mode = mode });

    public LayerBuilder Symlink(string name, string target) =>
        Add(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target });

    public LayerBuilder HardLink(string name, string target) =>
        Add(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target });

    public LayerBuilder Fifo(string name) => Add(new PaxTarEntry(TarEntryType.Fifo, name));

    public LayerBuilder Add(TarEntry entry)
    {
        _entries.Add(entry);
        return this;
    }

    public byte[] Bytes()
    {
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, leaveOpen: true))
        {
            foreach (var e in _entries)
            {
                e.DataStream?.Seek(0, SeekOrigin.Begin);
                w.WriteEntry(e);
            }
        }
        return ms.ToArray();
    }

    public Stream Build() => new MemoryStream(Bytes());

    public Stream BuildGzip()
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        {
            gz.Write(Bytes());
        }
        ms.Position = 0;
        return ms;
    }
}
