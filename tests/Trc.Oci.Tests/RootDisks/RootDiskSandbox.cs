using System.Formats.Tar;
using System.Text;
using Trc.Oci.Images;
using Trc.Oci.Layers;
using Trc.Oci.RootDisks;
using Trc.Oci.Tests.Layers;

namespace Trc.Oci.Tests.RootDisks;

/// <summary>A clock the test moves by hand; timers (the lock poll) still run on real time.</summary>
public sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}

/// <summary>A private cache directory per test, and the usual inputs of a build.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RootDiskSandbox : IDisposable
{
    public static readonly DateTimeOffset Start = new(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public RootDiskSandbox()
    {
        Base = Path.Combine(Path.GetTempPath(), "trc-rootdisks-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Base);
        CacheDirectory = Path.Combine(Base, "cache");
    }

    public string Base { get; }

    public string CacheDirectory { get; }

    public ManualTime Time { get; } = new(Start);

    public string TempDirectory => Path.Combine(CacheDirectory, "tmp");

    public RootDiskCache Cache(RootDiskOptions? options = null) => new(CacheDirectory, options, Time);

    public static Digest DigestOf(string text) => Digest.Compute(Digest.Sha256, Encoding.UTF8.GetBytes(text));

    public static ImageConfig Config(ContainerConfig? run = null) => new()
    {
        Architecture = "amd64",
        Os = "linux",
        Config = run,
        RootFs = new RootFs { Type = "layers", DiffIds = [] },
    };

    /// <summary>A populate that applies the layers with the real applier.</summary>
    public static Func<string, CancellationToken, Task<LayerApplyResult>> Apply(LayerApplierOptions options, params LayerBuilder[] layers) =>
        (root, ct) => Task.Run(() => new LayerApplier(root, options).ApplyAll(layers.Select(l => l.Build()), ct), ct);

    /// <summary>A populate writing one small file.</summary>
    public static Func<string, CancellationToken, Task<LayerApplyResult>> OneFile(string content = "hello") =>
        Apply(new LayerApplierOptions(), new LayerBuilder().File("etc/hello", content));

    public static PaxTarEntry Entry(TarEntryType type, string name, int mode, int uid = 0, int gid = 0, byte[]? data = null)
    {
        var entry = new PaxTarEntry(type, name) { Mode = (UnixFileMode)mode, Uid = uid, Gid = gid };
        if (data is not null)
        {
            entry.DataStream = new MemoryStream(data);
        }
        return entry;
    }

    /// <summary>
    /// A populate writing files directly and recording their owners (as the applier would), for names
    /// .NET's TarReader cannot read (a newline in a PAX path).
    /// </summary>
    public static Func<string, CancellationToken, Task<LayerApplyResult>> WriteFiles(bool chown, params (string Name, int Uid, int Gid)[] files) => (root, _) =>
    {
        var result = new LayerApplyResult();
        foreach (var (name, uid, gid) in files)
        {
            var path = Path.Combine(root, name);
            File.WriteAllText(path, name);
            if (chown)
            {
                Ext4Inspector.Run("chown", $"{uid}:{gid}", path);
            }
            result.Owners.Add(new EntryOwner(name, uid, gid));
        }
        return Task.FromResult(result);
    };

    /// <summary>Files under the cache directory, relative, sorted; the tmp directory itself left out when empty.</summary>
    public string[] CacheFiles() => Directory.Exists(CacheDirectory)
        ? [.. Directory.EnumerateFileSystemEntries(CacheDirectory, "*", SearchOption.AllDirectories)
            .Where(p => !Directory.Exists(p))
            .Select(p => Path.GetRelativePath(CacheDirectory, p))
            .Order(StringComparer.Ordinal)]
        : [];

    public string[] TempEntries() => Directory.Exists(TempDirectory)
        ? [.. Directory.EnumerateFileSystemEntries(TempDirectory).Select(Path.GetFileName).Order(StringComparer.Ordinal)!]
        : [];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Base, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
        catch (UnauthorizedAccessException)
        {
            // best effort
        }
    }
}

/// <summary>A fact that needs root (chown); skipped with a visible reason otherwise.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root: it chowns files, or has the applier do it";
        }
    }
}

/// <summary>Collects progress reports synchronously (Progress&lt;T&gt; would post them later).</summary>
public sealed class ProgressLog : IProgress<RootDiskProgress>
{
    private readonly List<RootDiskProgress> _reports = [];

    public IReadOnlyList<RootDiskProgress> Reports
    {
        get
        {
            lock (_reports)
            {
                return [.. _reports];
            }
        }
    }

    public IEnumerable<RootDiskPhase> Phases => Reports.Select(r => r.Phase);

    public void Report(RootDiskProgress value)
    {
        lock (_reports)
        {
            _reports.Add(value);
        }
    }
}
