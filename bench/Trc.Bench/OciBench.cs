using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Trc.Oci.Build;
using Trc.Testing.Registry;

namespace Trc.Bench;

/// <summary>
/// <c>bench/run oci</c>: from a loopback docker-registry to a read-only ext4 root disk, cold cache.
/// trc: <c>trc image rootfs REF</c> (pull, verify, unpack, mkfs.ext4 -d), one process.
/// Peer: <c>skopeo copy</c> into an OCI layout, <c>umoci unpack</c>, <c>mkfs.ext4 -d</c> on the
/// rootfs, sized the same way (content plus 20% and 16 MiB). Three images, made locally: many small
/// files, a mix, a few large files. Rounds alternate which side goes first; the figure is the
/// median over rounds, and the ratio is the peer's time over trc's (above 1: trc is faster).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class OciBench
{
    private const int Rounds = 5;

    public static async Task<int> RunAsync()
    {
        var trcDll = Path.GetFullPath(Environment.GetEnvironmentVariable("TRC_BENCH_TRC_DLL") ?? "src/Trc.Cli/bin/Release/net10.0/trc.dll");
        if (!File.Exists(trcDll))
        {
            Console.Error.WriteLine($"oci bench: {trcDll} not found; build src/Trc.Cli in Release first (bench/run does)");
            return 2;
        }
        var work = Directory.CreateTempSubdirectory("trc-bench-oci-");
        try
        {
            await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Anonymous, CancellationToken.None);
            var images = new (string Name, string Key, Action<string> Make)[]
            {
                ("many small files", "small_files", dir => MakeSmallFiles(dir, 20_000)),
                ("mixed", "mixed", MakeMixed),
                ("a few large files", "large_files", MakeLarge),
            };
            Console.WriteLine($"OCI pull + unpack + ext4 root disk, cold cache, from docker-registry on loopback; {Rounds} rounds, order alternating; median.");
            Console.WriteLine("trc: `trc image rootfs REF` (one process). Peer: `skopeo copy` to an OCI layout + `umoci unpack` + `mkfs.ext4 -d`.");
            var result = new Dictionary<string, object>();
            foreach (var (name, key, make) in images)
            {
                var source = Path.Combine(work.FullName, key, "src");
                Directory.CreateDirectory(source);
                make(source);
                var built = DirectoryImageBuilder.Build(source, Path.Combine(work.FullName, key, "layout"), "v1",
                    new DirectoryImageOptions { Cmd = ["/bin/sh"], ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) });
                await ImageTools.SkopeoCopyAsync($"oci:{Path.Combine(work.FullName, key, "layout")}:v1", registry.Reference($"bench/{key}", "v1"), null, null, all: false, CancellationToken.None);
                var (files, bytes) = Measure(source);
                Directory.Delete(source, recursive: true);
                var reference = $"{registry.Host}/bench/{key}:v1";

                var trcTimes = new List<double>();
                var peerTimes = new List<double>();
                for (var round = 0; round < Rounds; round++)
                {
                    var roundDir = Path.Combine(work.FullName, key, $"round{round}");
                    async Task Trc() => trcTimes.Add(await TimeTrcAsync(trcDll, reference, Path.Combine(roundDir, "trc")));
                    async Task Peer() => peerTimes.Add(await TimePeerAsync(registry, $"bench/{key}", Path.Combine(roundDir, "peer")));
                    if (round % 2 == 0)
                    {
                        await Trc();
                        await Peer();
                    }
                    else
                    {
                        await Peer();
                        await Trc();
                    }
                    Directory.Delete(roundDir, recursive: true);
                }
                var trc = Stats.Median(trcTimes);
                var peer = Stats.Median(peerTimes);
                var ratio = peer / trc;
                Console.WriteLine($"{name,-18} {files,6} files {bytes / 1048576.0,7:0.0} MiB (layer {built.LayerSize / 1048576.0:0.0} MiB gzip)");
                Console.WriteLine($"  trc   {trc,7:0} ms   (rounds {string.Join(", ", trcTimes.Select(t => t.ToString("0")))})");
                Console.WriteLine($"  peer  {peer,7:0} ms   (rounds {string.Join(", ", peerTimes.Select(t => t.ToString("0")))})");
                Console.WriteLine($"  ratio {ratio:0.00}");
                result[$"ratio_{key}"] = Math.Round(ratio, 3);
                result[$"trc_{key}_ms"] = Math.Round(trc);
                result[$"peer_{key}_ms"] = Math.Round(peer);
            }
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    private static async Task<double> TimeTrcAsync(string trcDll, string reference, string dir)
    {
        Directory.CreateDirectory(dir);
        var started = Stopwatch.GetTimestamp();
        await ImageTools.RunAsync("dotnet", [trcDll, "image", "rootfs", reference, "--cache", Path.Combine(dir, "cache"), "--registry-auth", EmptyAuth(dir)], CancellationToken.None);
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    private static async Task<double> TimePeerAsync(LocalRegistry registry, string repository, string dir)
    {
        Directory.CreateDirectory(dir);
        var layout = Path.Combine(dir, "layout");
        var bundle = Path.Combine(dir, "bundle");
        var started = Stopwatch.GetTimestamp();
        await ImageTools.SkopeoCopyAsync(registry.Reference(repository, "v1"), $"oci:{layout}:v1", null, null, all: false, CancellationToken.None);
        await ImageTools.RunAsync("umoci", ["unpack", "--image", $"{layout}:v1", bundle], CancellationToken.None);
        var (files, bytes) = Measure(Path.Combine(bundle, "rootfs"));
        var sizeKiB = (long)(bytes * 1.2 / 1024) + 16 * 1024 + files * 4;
        await ImageTools.RunAsync("mkfs.ext4", ["-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-O", "^has_journal", "-N", (files + 1024).ToString(),
            "-d", Path.Combine(bundle, "rootfs"), Path.Combine(dir, "disk.ext4"), $"{sizeKiB}k"], CancellationToken.None);
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    private static string EmptyAuth(string dir)
    {
        var path = Path.Combine(dir, "auth.json");
        File.WriteAllText(path, "{}");
        return path;
    }

    private static (long Files, long Bytes) Measure(string root)
    {
        long files = 0, bytes = 0;
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            files++;
            if (entry is FileInfo file && file.LinkTarget is null)
            {
                bytes += (file.Length + 4095) / 4096 * 4096;
            }
        }
        return (files, bytes);
    }

    // Text-like content (compresses about 3:1, as source and config files do), deterministic.
    private static byte[] Text(Random random, int length)
    {
        string[] words = ["config", "value", "server", "listen", "return", "function", "import", "const", "error", "data", "the", "and", "0x1f", "{", "}", "\n"];
        var builder = new StringBuilder(length + 16);
        while (builder.Length < length)
        {
            builder.Append(words[random.Next(words.Length)]).Append(' ');
        }
        return Encoding.ASCII.GetBytes(builder.ToString(0, length));
    }

    private static void MakeSmallFiles(string root, int count)
    {
        var random = new Random(1);
        for (var i = 0; i < count; i++)
        {
            var dir = Path.Combine(root, $"d{i % 200:000}", $"s{i % 7}");
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Path.Combine(dir, $"f{i:00000}.txt"), Text(random, random.Next(256, 4096)));
        }
    }

    private static void MakeMixed(string root)
    {
        MakeSmallFiles(Path.Combine(root, "small"), 3_000);
        var random = new Random(2);
        Directory.CreateDirectory(Path.Combine(root, "lib"));
        for (var i = 0; i < 60; i++)
        {
            var size = random.Next(64 * 1024, 2 * 1024 * 1024);
            var bytes = i % 2 == 0 ? Text(random, size) : RandomBytes(random, size);
            File.WriteAllBytes(Path.Combine(root, "lib", $"m{i:00}.so"), bytes);
        }
        for (var i = 0; i < 2; i++)
        {
            File.WriteAllBytes(Path.Combine(root, $"big{i}.bin"), RandomBytes(random, 32 * 1024 * 1024));
        }
    }

    private static void MakeLarge(string root)
    {
        var random = new Random(3);
        for (var i = 0; i < 3; i++)
        {
            // Half random, half text: a binary with its data, about 1.5:1 compressible.
            using var file = File.Create(Path.Combine(root, $"large{i}.bin"));
            for (var chunk = 0; chunk < 100; chunk++)
            {
                file.Write(chunk % 2 == 0 ? RandomBytes(random, 1024 * 1024) : Text(random, 1024 * 1024));
            }
        }
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
