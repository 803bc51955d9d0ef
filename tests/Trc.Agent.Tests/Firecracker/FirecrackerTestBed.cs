using System.Globalization;
using System.Runtime.Versioning;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Firecracker;

namespace Trc.Agent.Tests.Firecracker;

/// <summary>
/// A temporary host for driver tests: guest files (kernel, initrd, disks, a config disk holding a
/// secret), an instances directory, a chroot base, and a stand-in for the firecracker and jailer
/// binaries. The stand-in is a shell script and only that: it records its argv, holds its stdin
/// and stdout (the console FIFOs) and plays the guest's end of the console (a boot line, an Info
/// frame per signal, an exit frame on a stop unless told to ignore it). It serves no API: the
/// contract tests run the real driver against <see cref="FakeFirecrackerApi"/>, which binds at
/// the socket named in the stand-in's argv.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class FirecrackerTestBed : IDisposable
{
    /// <summary>A value that must never leave the config disk.</summary>
    public const string Secret = "TRC_TEST_SECRET_5f1d3a";

    public FirecrackerTestBed(bool obeyStop = true)
    {
        Root = Directory.CreateTempSubdirectory("trc-fc-test-").FullName;
        Instances = Directory.CreateDirectory(Path.Combine(Root, "instances")).FullName;
        ChrootBase = Directory.CreateDirectory(Path.Combine(Root, "jail")).FullName;
        var assets = Directory.CreateDirectory(Path.Combine(Root, "assets")).FullName;
        Kernel = Write(Path.Combine(assets, "vmlinux"), "kernel");
        Initrd = Write(Path.Combine(assets, "initrd.cpio"), "initrd");
        RootDisk = Write(Path.Combine(assets, "release.ext4"), "root");
        var bin = Directory.CreateDirectory(Path.Combine(Root, "bin")).FullName;
        ArgvFile = Path.Combine(Root, "argv");
        PidFile = Path.Combine(Root, "pid");
        Firecracker = StandIn(Path.Combine(bin, "firecracker"), obeyStop);
        Jailer = StandIn(Path.Combine(bin, "jailer"), obeyStop);
    }

    public string Root { get; }

    public string Instances { get; }

    public string ChrootBase { get; }

    public string Kernel { get; }

    public string Initrd { get; }

    public string RootDisk { get; }

    public string Firecracker { get; }

    public string Jailer { get; }

    /// <summary>Where the stand-in writes its argv, one argument a line.</summary>
    public string ArgvFile { get; }

    public IReadOnlyList<string> Argv => File.ReadAllLines(ArgvFile);

    /// <summary>Where the stand-in writes its pid.</summary>
    public string PidFile { get; }

    /// <summary>The last stand-in's pid.</summary>
    public int StandInPid => int.Parse(File.ReadAllText(PidFile).Trim(), CultureInfo.InvariantCulture);

    public FirecrackerOptions Options(bool jailer) => new()
    {
        FirecrackerBinary = Firecracker,
        JailerBinary = Jailer,
        UseJailer = jailer,
        Uid = jailer ? CurrentId("Uid") : null,
        Gid = jailer ? CurrentId("Gid") : null,
        ChrootBaseDir = ChrootBase,
        ApiSocketTimeout = TimeSpan.FromSeconds(20),
        ApiRequestTimeout = TimeSpan.FromSeconds(20),
        StopMargin = TimeSpan.FromSeconds(1),
        PollInterval = TimeSpan.FromMilliseconds(20),
    };

    /// <summary>A spec with its own state directory, scratch and config disks, and <paramref name="volumes"/> volume files.</summary>
    public VmSpec Spec(string id, int volumes = 0, long memoryBytes = 256L << 20, int vcpus = 2, bool network = true)
    {
        var state = Directory.CreateDirectory(Path.Combine(Instances, id)).FullName;
        var scratch = Write(Path.Combine(state, "scratch.ext4"), "scratch");
        var config = Write(Path.Combine(state, "config.disk"), $"TRCGUEST1\nsecrets 30\nDATABASE_PASSWORD={Secret}\nend 0\n\n");
        var vols = Enumerable.Range(0, volumes)
            .Select(i => Write(Path.Combine(Root, $"volume-{id}-{i.ToString(CultureInfo.InvariantCulture)}.ext4"), "volume"))
            .ToList();
        return new VmSpec(id, state, Kernel, Initrd, RootDisk, scratch, config, vols, memoryBytes, vcpus,
            network ? new VmNetwork("trc-tap7", "02:fc:00:00:00:07") : null, Cgroup: null);
    }

    /// <summary>The API socket the stand-in's argv names (jailed: inside its jail).</summary>
    public static string SocketOf(IReadOnlyList<string> argv)
    {
        string Value(string flag) => argv[argv.ToList().IndexOf(flag) + 1];
        if (!argv.Contains("--exec-file"))
        {
            return Value("--api-sock");
        }
        var inJail = argv.Skip(argv.ToList().IndexOf("--") + 1).ToList();
        return Path.Combine(Value("--chroot-base-dir"), Path.GetFileName(Value("--exec-file")), Value("--id"), "root",
            inJail[inJail.IndexOf("--api-sock") + 1].TrimStart('/'));
    }

    private static string Write(string path, string content)
    {
        File.WriteAllText(path, content);
        return path;
    }

    private string StandIn(string path, bool obeyStop)
    {
        var onStop = obeyStop ? "printf '%sX 143 0\\n' \"$rs\"; exit 0" : ":";
        File.WriteAllText(path, $$"""
            #!/bin/sh
            # Test stand-in for a VMM binary: argv and console plumbing only (no API, no guest).
            if [ "$1" = "--version" ]; then echo "Firecracker v0.0.0-standin"; exit 0; fi
            echo $$ > '{{PidFile}}'
            printf '%s\n' "$@" > '{{ArgvFile}}.tmp' && mv '{{ArgvFile}}.tmp' '{{ArgvFile}}'
            rs=$(printf '\036')
            printf 'stand-in VMM up\n'
            printf '%sI booted\n' "$rs"
            while IFS= read -r line; do
              case "$line" in
                "${rs}T "*) {{onStop}};;
                "${rs}S "*) printf '%sI signal %s\n' "$rs" "${line#"${rs}S "}";;
              esac
            done
            """.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return path;
    }

    private static int CurrentId(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return int.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
