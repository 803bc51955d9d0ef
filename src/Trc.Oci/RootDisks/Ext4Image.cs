using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Trc.Oci.Images;

namespace Trc.Oci.RootDisks;

/// <summary>mkfs.ext4 and debugfs as the root disk builder runs them.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class Ext4Image
{
    public const string Mkfs = "mkfs.ext4";
    public const string Debugfs = "debugfs";
    public const string Label = "trc-root";

    /// <summary>
    /// Formats <paramref name="image"/> (a new file) with the content of <paramref name="source"/>.
    /// When mkfs runs out of blocks or inodes, the disk is rebuilt once at twice the size.
    /// </summary>
    /// <returns>The geometry the disk got.</returns>
    public static async Task<DiskGeometry> FormatAsync(string mkfs, string source, string image, DiskGeometry geometry, Digest digest,
        Action<DiskGeometry> starting, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            File.Delete(image);
            starting(geometry);
            var result = await ExternalTool.RunAsync(mkfs, MkfsArguments(source, image, geometry, digest), cancellationToken).ConfigureAwait(false);
            if (result.ExitCode == 0)
            {
                return geometry;
            }
            File.Delete(image);
            var outOfSpace = result.StandardError.Contains("Could not allocate", StringComparison.Ordinal)
                || result.StandardError.Contains("No space left", StringComparison.Ordinal);
            if (!outOfSpace || attempt == 2)
            {
                // -d and -E root_owner came with e2fsprogs 1.43: an option error most likely means an older one.
                var hint = result.StandardError.Contains("nvalid", StringComparison.Ordinal) || result.StandardError.Contains("Bad option", StringComparison.Ordinal)
                    ? $"; root disks need {ExternalTool.Package} 1.43 or newer"
                    : "";
                throw new RootDiskException(
                    $"{Mkfs} failed (exit {result.ExitCode}, {geometry.SizeBytes} bytes, {geometry.Inodes} inodes, attempt {attempt}{hint})", result.StandardError);
            }
            geometry = geometry.Scale(2);
        }
    }

    /// <summary>
    /// The mkfs.ext4 command line. No journal: the disk is only ever mounted read-only, and a
    /// journal would cost space and replay logic for writes that never happen. No resize inode: it
    /// reserves descriptor blocks for online growth of a disk that is never grown. No reserved blocks
    /// (-m 0): they are for root's writes. Owners, modes and times come from the files (-d); the root
    /// directory is root's. UUID and directory hash seed are derived from the digest, so the same
    /// image gives the same file system identity wherever it is built.
    /// </summary>
    public static IEnumerable<string> MkfsArguments(string source, string image, DiskGeometry geometry, Digest digest) =>
    [
        "-q", "-F", "-t", "ext4",
        "-b", RootTree.BlockSize.ToString(CultureInfo.InvariantCulture),
        "-I", "256", // 128-byte inodes (some small-disk profiles) cannot hold dates past 2038
        "-m", "0",
        "-N", geometry.Inodes.ToString(CultureInfo.InvariantCulture),
        "-L", Label,
        "-U", FilesystemUuid(digest).ToString(),
        "-O", "^has_journal,^resize_inode",
        "-E", $"root_owner=0:0,hash_seed={Derive(digest, "hash-seed")}",
        "-d", source,
        image,
        (geometry.SizeBytes / 1024).ToString(CultureInfo.InvariantCulture) + "k",
    ];

    /// <summary>
    /// Runs the command file with <c>debugfs -w</c>, then sets the <c>read-only</c> feature (which mkfs
    /// does not accept), so the guest kernel refuses to mount the shared disk read-write.
    /// debugfs exits 0 even when a command fails; failures show as lines on standard error besides
    /// its version banner.
    /// </summary>
    public static async Task RunDebugfsAsync(string debugfs, string image, string commandFile, IReadOnlyList<string> commands, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        foreach (var line in commands)
        {
            text.Append(line).Append('\n');
        }
        text.Append("feature read-only\n");
        await File.WriteAllTextAsync(commandFile, text.ToString(), new UTF8Encoding(false), cancellationToken).ConfigureAwait(false);
        var result = await ExternalTool.RunAsync(debugfs, ["-w", "-f", commandFile, image], cancellationToken).ConfigureAwait(false);
        var errors = result.StandardError.Split('\n')
            .Where(l => l.Length > 0 && !(l.StartsWith("debugfs ", StringComparison.Ordinal) && l.EndsWith(')')))
            .ToList();
        if (result.ExitCode != 0 || errors.Count > 0)
        {
            var shown = string.Join('\n', errors.Take(20)) + (errors.Count > 20 ? $"\n(and {errors.Count - 20} more lines)" : "");
            throw new RootDiskException($"{Debugfs} could not set owners and modes on the disk (exit {result.ExitCode})", shown);
        }
    }

    /// <summary>The ext4 UUID of the disk of <paramref name="digest"/>: a version 8 (vendor-specific) UUID from its hash.</summary>
    public static Guid FilesystemUuid(Digest digest) => Derive(digest, "uuid");

    private static Guid Derive(Digest digest, string purpose)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"trc root disk {purpose}\n{digest}"), hash);
        hash[6] = (byte)((hash[6] & 0x0f) | 0x80); // version 8
        hash[8] = (byte)((hash[8] & 0x3f) | 0x80); // RFC 9562 variant
        return new Guid(hash[..16], bigEndian: true);
    }
}
