using System.Globalization;

namespace Trc.Testing.Guest;

/// <summary>ext4 disk images for guests, made and read back with e2fsprogs: no mounts, no root needed for the image itself.</summary>
public static class Ext4Disk
{
    /// <summary>
    /// Makes an ext4 image of <paramref name="sizeMiB"/> MiB at <paramref name="image"/>, filled from
    /// <paramref name="fromDirectory"/> (owners and modes kept) or empty, its root directory owned by root.
    /// </summary>
    public static Task CreateAsync(string image, int sizeMiB, string? fromDirectory, CancellationToken ct) =>
        CreateAsync(image, sizeMiB, fromDirectory, 0, 0, ct);

    /// <summary>
    /// Makes an ext4 image of <paramref name="sizeMiB"/> MiB at <paramref name="image"/>, filled from
    /// <paramref name="fromDirectory"/> (owners and modes kept) or empty, its root directory owned by
    /// <paramref name="rootUid"/>:<paramref name="rootGid"/>.
    /// </summary>
    public static async Task CreateAsync(string image, int sizeMiB, string? fromDirectory, int rootUid, int rootGid, CancellationToken ct)
    {
        File.Delete(image);
        List<string> args = ["-q", "-F", "-t", "ext4", "-E", $"root_owner={rootUid}:{rootGid}"];
        if (fromDirectory is not null)
        {
            args.AddRange(["-d", fromDirectory]);
        }
        args.AddRange([image, $"{sizeMiB.ToString(CultureInfo.InvariantCulture)}M"]);
        await HostTool.RunCheckedAsync(Tool("mkfs.ext4"), args, ct);
    }

    /// <summary>A file's content in the image (debugfs <c>cat</c>), or null when it is not there.</summary>
    public static async Task<string?> ReadFileAsync(string image, string path, CancellationToken ct)
    {
        var stat = await HostTool.RunAsync(Tool("debugfs"), ["-R", $"stat {path}", image], ct);
        if (stat.ExitCode != 0 || stat.Stderr.Contains("File not found", StringComparison.Ordinal))
        {
            return null;
        }
        return await HostTool.RunCheckedAsync(Tool("debugfs"), ["-R", $"cat {path}", image], ct);
    }

    /// <summary>The superblock's state (<c>clean</c>, <c>not clean</c>, ...) and whether the journal needs recovery.</summary>
    public static async Task<(string State, bool NeedsRecovery)> ReadStateAsync(string image, CancellationToken ct)
    {
        var header = await HostTool.RunCheckedAsync(Tool("dumpe2fs"), ["-h", image], ct);
        string? state = null;
        var recovery = false;
        foreach (var line in header.Split('\n'))
        {
            if (line.StartsWith("Filesystem state:", StringComparison.Ordinal))
            {
                state = line["Filesystem state:".Length..].Trim();
            }
            if (line.StartsWith("Filesystem features:", StringComparison.Ordinal))
            {
                recovery = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("needs_recovery");
            }
        }
        return (state ?? throw new InvalidOperationException($"dumpe2fs printed no state for {image}"), recovery);
    }

    private static string Tool(string name) =>
        HostTool.Find(name) ?? throw new InvalidOperationException($"{name} is not installed (e2fsprogs; scripts/install-test-deps installs it)");
}
