using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Trc.Oci.Tests.RootDisks;

/// <summary>What debugfs says about one inode of a disk.</summary>
public sealed record Ext4Stat(string Type, int Mode, long Uid, long Gid, int Links, long Size, long Inode);

/// <summary>Reads an ext4 image with the real e2fsprogs tools (debugfs -R, e2fsck -fn, dumpe2fs -h); never mounts.</summary>
public static partial class Ext4Inspector
{
    /// <summary>Quotes a path for a debugfs request the way the builder does.</summary>
    public static string Quote(string path) => "\"" + path.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public static Ext4Stat Stat(string image, string path)
    {
        var (code, output, error) = Run("debugfs", "-R", $"stat {Quote(path)}", image);
        var head = HeadRegex().Match(output);
        Assert.True(code == 0 && head.Success, $"debugfs stat {path}: {error}{output}");
        var owner = OwnerRegex().Match(output);
        var links = LinksRegex().Match(output);
        return new Ext4Stat(
            head.Groups[2].Value,
            Convert.ToInt32(head.Groups[3].Value, 8),
            long.Parse(owner.Groups[1].Value, CultureInfo.InvariantCulture),
            long.Parse(owner.Groups[2].Value, CultureInfo.InvariantCulture),
            int.Parse(links.Groups[1].Value, CultureInfo.InvariantCulture),
            long.Parse(owner.Groups[3].Value, CultureInfo.InvariantCulture),
            long.Parse(head.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    public static byte[] Cat(string image, string path)
    {
        var (code, output, error) = RunBytes("debugfs", "-R", $"cat {Quote(path)}", image);
        Assert.True(code == 0 && !error.Contains("not found", StringComparison.Ordinal), $"debugfs cat {path}: {error}");
        return output;
    }

    public static string LinkTarget(string image, string path)
    {
        var (_, output, _) = Run("debugfs", "-R", $"stat {Quote(path)}", image);
        var fast = FastLinkRegex().Match(output);
        return fast.Success ? fast.Groups[1].Value : Encoding.UTF8.GetString(Cat(image, path));
    }

    /// <summary>Whether the path exists on the disk.</summary>
    public static bool Exists(string image, string path)
    {
        var (_, output, _) = Run("debugfs", "-R", $"stat {Quote(path)}", image);
        return HeadRegex().IsMatch(output);
    }

    /// <summary>e2fsck -fn: a forced check that changes nothing; exit 0 means clean.</summary>
    public static (int ExitCode, string Output) Fsck(string image)
    {
        var (code, output, error) = Run("e2fsck", "-fn", image);
        return (code, output + error);
    }

    /// <summary>The superblock as dumpe2fs -h prints it.</summary>
    public static string Superblock(string image) => Run("dumpe2fs", "-h", image).Output;

    public static (int ExitCode, string Output, string Error) Run(string tool, params string[] arguments)
    {
        var (code, output, error) = RunBytes(tool, arguments);
        return (code, Encoding.UTF8.GetString(output), error);
    }

    private static (int ExitCode, byte[] Output, string Error) RunBytes(string tool, params string[] arguments)
    {
        var start = new ProcessStartInfo(Locate(tool)) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["LC_ALL"] = "C";
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = new MemoryStream();
        process.StandardOutput.BaseStream.CopyTo(output);
        process.WaitForExit();
        return (process.ExitCode, output.ToArray(), error.Result);
    }

    private static string Locate(string tool) =>
        new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists) ?? tool;

    [GeneratedRegex(@"Inode: (\d+)\s+Type: (\S+)\s+Mode:\s+(\d+)")]
    private static partial Regex HeadRegex();

    [GeneratedRegex(@"User:\s+(\d+)\s+Group:\s+(\d+).*Size: (\d+)")]
    private static partial Regex OwnerRegex();

    [GeneratedRegex(@"Links: (\d+)")]
    private static partial Regex LinksRegex();

    [GeneratedRegex("Fast link dest: \"(.*)\"")]
    private static partial Regex FastLinkRegex();
}
