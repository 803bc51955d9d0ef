using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Trc.Cli.Dev;
using Trc.Oci.Images;
using Trc.Oci.Layers;
using Trc.Oci.Layout;
using Trc.Testing;

namespace Trc.Cli.Tests.Dev;

/// <summary>A fact that runs programs in a chroot: skipped, with the reason, where this process is not root or chroot is missing.</summary>
public sealed class ChrootFactAttribute : FactAttribute
{
    public ChrootFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "chroot needs root; this test process is not root";
        }
        else if (HostTool.Find("chroot") is null)
        {
            Skip = "chroot is not installed (coreutils)";
        }
    }
}

/// <summary>A fact that mounts in a private mount namespace: skipped, with the reason, where this process is not root.</summary>
public sealed class MountNamespaceFactAttribute : FactAttribute
{
    public MountNamespaceFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "a private mount namespace needs root (CAP_SYS_ADMIN); this test process is not root";
        }
    }
}

/// <summary>One entry of an image's only layer.</summary>
public sealed record LayerEntry(TarEntryType Type, UnixFileMode Mode, string LinkName, byte[] Data, DateTimeOffset ModificationTime);

/// <summary>An example image as its layout holds it: the manifest's digest, the config and the layer's entries by path.</summary>
public sealed record ExampleImage(Digest Digest, ImageConfig Config, IReadOnlyDictionary<string, LayerEntry> Entries)
{
    public LayerEntry File(string path) =>
        Entries.TryGetValue(path, out var entry) ? entry : throw new Xunit.Sdk.XunitException($"the image has no {path}");
}

/// <summary>The example images built once, by <see cref="DevExamples.EnsureAsync"/>, into a temp dev directory for the class.</summary>
[SupportedOSPlatform("linux")]
public sealed class DevExamplesWorld : IAsyncLifetime
{
    public DirectoryInfo Root { get; } = Directory.CreateTempSubdirectory("trc-dev-examples-");

    public string DevDir => Path.Combine(Root.FullName, "dev");

    public string Images => Path.Combine(DevDir, "images");

    /// <summary>The progress lines of the first build.</summary>
    public List<string> FirstProgress { get; } = [];

    public ExampleImage HelloV1 { get; private set; } = null!;

    public ExampleImage HelloBroken { get; private set; } = null!;

    public ExampleImage EchoV1 { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await DevExamples.EnsureAsync(DevDir, Images, FirstProgress.Add, timeout.Token);
        HelloV1 = Read(Images, "hello", "v1");
        HelloBroken = Read(Images, "hello", "broken");
        EchoV1 = Read(Images, "echo", "v1");
    }

    public Task DisposeAsync()
    {
        Root.Delete(recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>The digest <c>IMAGES/REPOSITORY</c> has for <paramref name="tag"/>.</summary>
    public static Digest DigestOf(string images, string repository, string tag) => OciLayout.Open(Path.Combine(images, repository)).Find(tag).Digest;

    /// <summary>Reads an image from its layout: manifest, config, and every entry of its one gzip layer.</summary>
    public static ExampleImage Read(string images, string repository, string tag)
    {
        var layout = OciLayout.Open(Path.Combine(images, repository));
        var fetched = layout.ReadManifest(layout.Find(tag));
        var manifest = Assert.IsType<ImageManifest>(fetched.Document);
        var config = ManifestParser.ParseConfig(layout.Blobs.ReadAll(manifest.Config.Digest, ManifestParser.MaxConfigBytes));
        var layer = Assert.Single(manifest.Layers);
        Assert.Equal(MediaTypes.OciLayerTarGzip, layer.MediaType);
        var entries = new Dictionary<string, LayerEntry>(StringComparer.Ordinal);
        using (var blob = layout.Blobs.OpenRead(layer.Digest))
        using (var gzip = new GZipStream(blob, CompressionMode.Decompress))
        using (var reader = new TarReader(gzip))
        {
            while (reader.GetNextEntry() is { } entry)
            {
                using var data = new MemoryStream();
                entry.DataStream?.CopyTo(data);
                Assert.True(entries.TryAdd(entry.Name.TrimEnd('/'), new LayerEntry(entry.EntryType, entry.Mode, entry.LinkName, data.ToArray(), entry.ModificationTime)),
                    $"{repository}:{tag} has {entry.Name} twice");
            }
        }
        return new ExampleImage(fetched.Digest, config, entries);
    }
}

/// <summary>
/// The example images <c>trc dev</c> builds from this machine's busybox and openssl: their files,
/// their TLS material, reproducible digests, and (as root) that they actually run.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DevExamplesTests(DevExamplesWorld world) : IClassFixture<DevExamplesWorld>
{
    private static readonly UnixFileMode Mode755 = (UnixFileMode)Convert.ToInt32("755", 8);
    private static readonly UnixFileMode Mode644 = (UnixFileMode)Convert.ToInt32("644", 8);
    private static readonly UnixFileMode Mode600 = (UnixFileMode)Convert.ToInt32("600", 8);
    private static readonly UnixFileMode Mode1777 = (UnixFileMode)Convert.ToInt32("1777", 8);

    private static string HostKey(string devDir) => Path.Combine(devDir, "examples", "hello-tls", "key.pem");

    private static string HostCert(string devDir) => Path.Combine(devDir, "examples", "hello-tls", "cert.pem");

    private static byte[] Example(string path) => File.ReadAllBytes(Path.Combine(CliRunner.RepositoryRoot, "examples", path));

    private static CancellationToken Minutes(int n) => new CancellationTokenSource(TimeSpan.FromMinutes(n)).Token;

    [Fact]
    public void The_first_run_builds_each_example_once_and_tags_it()
    {
        var building = world.FirstProgress.Where(l => l.StartsWith("building the example image ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, building.Count);
        Assert.StartsWith("building the example image hello:v1: ", building[0], StringComparison.Ordinal);
        Assert.StartsWith("building the example image hello:broken: ", building[1], StringComparison.Ordinal);
        Assert.StartsWith("building the example image echo:v1: ", building[2], StringComparison.Ordinal);
        Assert.Equal(3, world.FirstProgress.Count(l => l.StartsWith("built ", StringComparison.Ordinal)));
        Assert.Contains(world.FirstProgress, l => l.StartsWith($"built hello:v1 ({world.HelloV1.Digest.ToString()[..19]}, ", StringComparison.Ordinal));

        var hello = OciLayout.Open(Path.Combine(world.Images, "hello")).ReadIndex().Manifests
            .Select(m => m.Annotations![OciLayout.RefNameAnnotation]).Order(StringComparer.Ordinal);
        Assert.Equal(["broken", "v1"], hello);
        Assert.Equal(world.EchoV1.Digest, DevExamplesWorld.DigestOf(world.Images, "echo", "v1"));
        Assert.Empty(Directory.GetDirectories(Path.Combine(world.DevDir, "examples"), ".build-*"));
    }

    [Fact]
    public void Every_image_has_busybox_with_sh_a_sticky_tmp_a_PATH_and_fixed_times()
    {
        var busybox = File.ReadAllBytes(HostTool.Find("busybox") ?? throw new InvalidOperationException("busybox is not installed"));
        foreach (var image in new[] { world.HelloV1, world.HelloBroken, world.EchoV1 })
        {
            var bin = image.File("bin/busybox");
            Assert.Equal(TarEntryType.RegularFile, bin.Type);
            Assert.Equal(busybox, bin.Data);
            Assert.True(bin.Mode.HasFlag(UnixFileMode.UserExecute | UnixFileMode.OtherExecute), bin.Mode.ToString());

            var sh = image.File("bin/sh");
            Assert.Equal(TarEntryType.SymbolicLink, sh.Type);
            Assert.Equal("busybox", sh.LinkName);
            Assert.Equal("busybox", image.File("bin/nc").LinkName);

            var tmp = image.File("tmp");
            Assert.Equal(TarEntryType.Directory, tmp.Type);
            Assert.Equal(Mode1777, tmp.Mode);

            Assert.Contains("PATH=/bin:/usr/bin", image.Config.Config!.Env!);
            Assert.Equal("linux", image.Config.Os);
            Assert.All(image.Entries, e => Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_767_225_600), e.Value.ModificationTime));
            Assert.All(image.Entries.Values, e => Assert.NotEqual(TarEntryType.HardLink, e.Type));
        }
    }

    [Fact]
    public async Task Hello_has_openssl_and_every_library_ldd_lists_at_its_path()
    {
        var openssl = HostTool.Find("openssl") ?? throw new InvalidOperationException("openssl is not installed");
        var hello = world.HelloV1;

        Assert.Equal(File.ReadAllBytes(openssl), hello.File(openssl.TrimStart('/')).Data);
        var ldd = await HostTool.RunCheckedAsync("ldd", [openssl], Minutes(1));
        var libraries = ldd.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Contains("=> ", StringComparison.Ordinal) ? l[(l.IndexOf("=> ", StringComparison.Ordinal) + 3)..] : l)
            .Select(l => l.Split(' ')[0])
            .Where(p => p.StartsWith('/'))
            .ToList();
        Assert.Contains(libraries, l => l.Contains("libcrypto", StringComparison.Ordinal));
        Assert.Contains(libraries, l => l.Contains("ld-linux", StringComparison.Ordinal));
        foreach (var library in libraries)
        {
            var entry = hello.File(library.TrimStart('/'));
            Assert.Equal(TarEntryType.RegularFile, entry.Type);
            Assert.True(File.ReadAllBytes(library).AsSpan().SequenceEqual(entry.Data), $"{library} differs from the host's");
        }
        Assert.DoesNotContain(world.EchoV1.Entries.Keys, k => k.EndsWith("/openssl", StringComparison.Ordinal));
    }

    [Fact]
    public void Hello_v1_carries_the_examples_script_and_its_TLS_files()
    {
        var hello = world.HelloV1;

        var serve = hello.File("app/serve.sh");
        Assert.Equal(Example("hello/serve.sh"), serve.Data);
        Assert.Equal(Mode755, serve.Mode);
        Assert.Equal(File.ReadAllBytes(HostCert(world.DevDir)), hello.File("app/tls/cert.pem").Data);
        Assert.Equal(File.ReadAllBytes(HostKey(world.DevDir)), hello.File("app/tls/key.pem").Data);
    }

    [Fact]
    public void Hello_broken_is_hello_without_its_key()
    {
        var v1 = world.HelloV1.Entries.Keys.ToHashSet(StringComparer.Ordinal);
        var broken = world.HelloBroken.Entries.Keys.ToHashSet(StringComparer.Ordinal);

        Assert.Equal(["app/tls/key.pem"], v1.Except(broken));
        Assert.Empty(broken.Except(v1));
        Assert.Equal(world.HelloV1.File("app/tls/cert.pem").Data, world.HelloBroken.File("app/tls/cert.pem").Data);
        Assert.Equal(world.HelloV1.File("app/serve.sh").Data, world.HelloBroken.File("app/serve.sh").Data);
        Assert.NotEqual(world.HelloV1.Digest, world.HelloBroken.Digest);
    }

    [Fact]
    public void Echo_carries_its_two_scripts_and_no_TLS()
    {
        var echo = world.EchoV1;

        foreach (var script in new[] { "listen.sh", "answer.sh" })
        {
            var entry = echo.File("app/" + script);
            Assert.Equal(Example("echo/" + script), entry.Data);
            Assert.Equal(Mode755, entry.Mode);
        }
        Assert.DoesNotContain(echo.Entries.Keys, k => k.StartsWith("app/tls", StringComparison.Ordinal) || k == "app/serve.sh");
    }

    [Fact]
    public async Task A_second_run_builds_nothing_and_keeps_every_digest()
    {
        var progress = new List<string>();
        var keyBefore = await File.ReadAllBytesAsync(HostKey(world.DevDir));

        await DevExamples.EnsureAsync(world.DevDir, world.Images, progress.Add, Minutes(1));

        Assert.Empty(progress);
        Assert.Equal(world.HelloV1.Digest, DevExamplesWorld.DigestOf(world.Images, "hello", "v1"));
        Assert.Equal(world.HelloBroken.Digest, DevExamplesWorld.DigestOf(world.Images, "hello", "broken"));
        Assert.Equal(world.EchoV1.Digest, DevExamplesWorld.DigestOf(world.Images, "echo", "v1"));
        Assert.Equal(keyBefore, await File.ReadAllBytesAsync(HostKey(world.DevDir)));
    }

    [Fact]
    public async Task Builds_are_reproducible_and_a_deleted_layout_is_rebuilt_alone_with_the_same_digest()
    {
        var images = Path.Combine(world.Root.FullName, "images-again");
        var progress = new List<string>();

        await DevExamples.EnsureAsync(world.DevDir, images, progress.Add, Minutes(3));

        Assert.Equal(3, progress.Count(l => l.StartsWith("building ", StringComparison.Ordinal)));
        Assert.Equal(world.HelloV1.Digest, DevExamplesWorld.DigestOf(images, "hello", "v1"));
        Assert.Equal(world.HelloBroken.Digest, DevExamplesWorld.DigestOf(images, "hello", "broken"));
        Assert.Equal(world.EchoV1.Digest, DevExamplesWorld.DigestOf(images, "echo", "v1"));

        Directory.Delete(Path.Combine(images, "echo"), recursive: true);
        progress.Clear();
        await DevExamples.EnsureAsync(world.DevDir, images, progress.Add, Minutes(3));

        Assert.StartsWith("building the example image echo:v1: ", Assert.Single(progress, l => l.StartsWith("building ", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Equal(world.EchoV1.Digest, DevExamplesWorld.DigestOf(images, "echo", "v1"));
        Assert.Equal(world.HelloV1.Digest, DevExamplesWorld.DigestOf(images, "hello", "v1"));
    }

    [Fact]
    public void The_hello_certificate_names_hello_localhost_and_matches_its_private_key()
    {
        var key = HostKey(world.DevDir);
        var shared = DevExamples.HelloCertificate(world.DevDir);

        Assert.Equal(Mode600, File.GetUnixFileMode(key));
        Assert.Equal(Mode644, File.GetUnixFileMode(shared));
        Assert.Equal(world.HelloV1.File("app/tls/cert.pem").Data, File.ReadAllBytes(shared));
        Assert.DoesNotContain("PRIVATE KEY", File.ReadAllText(shared));

        using var certificate = X509Certificate2.CreateFromPemFile(shared, key);
        Assert.True(certificate.HasPrivateKey);
        var names = Assert.Single(certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>()).EnumerateDnsNames();
        Assert.Equal([DevExamples.HelloHostname], names);
        Assert.Equal("hello.localhost", DevExamples.HelloHostname);
        Assert.True(certificate.NotAfter > DateTime.Now.AddYears(5));
        Assert.True(certificate.NotBefore < DateTime.Now);

        // The key signs what the certificate's public key verifies.
        using var signer = certificate.GetECDsaPrivateKey()!;
        using var publicOnly = X509Certificate2.CreateFromPem(File.ReadAllText(shared));
        using var verifier = publicOnly.GetECDsaPublicKey()!;
        var data = Encoding.ASCII.GetBytes("hello.localhost");
        Assert.True(verifier.VerifyData(data, signer.SignData(data, HashAlgorithmName.SHA256), HashAlgorithmName.SHA256));
    }

    [Fact]
    public async Task A_new_dev_directory_gets_a_new_key_and_keeps_it()
    {
        var devDir = Path.Combine(world.Root.FullName, "other-dev");
        var images = Path.Combine(devDir, "images");
        // The images are there already: only the TLS material is made.
        CopyDirectory(world.Images, images);

        await DevExamples.EnsureAsync(devDir, images, _ => { }, Minutes(1));
        var key = await File.ReadAllBytesAsync(HostKey(devDir));
        await DevExamples.EnsureAsync(devDir, images, _ => { }, Minutes(1));

        Assert.NotEqual(await File.ReadAllBytesAsync(HostKey(world.DevDir)), key);
        Assert.Equal(key, await File.ReadAllBytesAsync(HostKey(devDir)));
        Assert.Equal(await File.ReadAllBytesAsync(HostCert(devDir)), await File.ReadAllBytesAsync(DevExamples.HelloCertificate(devDir)));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
        foreach (var directory in Directory.EnumerateDirectories(from))
        {
            CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }

    // ---- running them ------------------------------------------------------------------------------

    /// <summary>The image's layer unpacked by trc's own applier into a fresh directory.</summary>
    private string Unpack(string repository, string tag)
    {
        var root = Path.Combine(world.Root.FullName, "rootfs", $"{repository}-{tag}-{Guid.NewGuid():N}");
        var layout = OciLayout.Open(Path.Combine(world.Images, repository));
        var manifest = (ImageManifest)layout.ReadManifest(layout.Find(tag)).Document;
        using var blob = layout.Blobs.OpenRead(manifest.Layers[0].Digest);
        new LayerApplier(root).Apply(blob);
        return root;
    }

    [ChrootFact]
    public async Task Hellos_openssl_and_busybox_run_inside_its_own_root_so_the_library_closure_is_complete()
    {
        var root = Unpack("hello", "v1");

        var version = await HostTool.RunAsync("chroot", [root, "/usr/bin/openssl", "version"], Minutes(1));
        Assert.True(version.ExitCode == 0, $"{version.CommandLine}: exit {version.ExitCode}\n{version.Stdout}{version.Stderr}");
        Assert.StartsWith("OpenSSL ", version.Stdout, StringComparison.Ordinal);

        var sh = await HostTool.RunAsync("chroot", [root, "/bin/sh", "-c", "cd /tmp && echo ok > f && cat f && [ -x /app/serve.sh ] && [ -r /app/tls/key.pem ] && echo ready"], Minutes(1));
        Assert.True(sh.ExitCode == 0, sh.Stderr);
        Assert.Equal("ok\nready\n", sh.Stdout);
    }

    [ChrootFact]
    public async Task Hello_broken_says_its_key_is_missing_and_exits_1()
    {
        var root = Unpack("hello", "broken");

        var run = await HostTool.RunAsync("chroot", [root, "/bin/sh", "/app/serve.sh"], Minutes(1));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("/app/tls/key.pem is missing from the image", run.Stderr);
    }

    [ChrootFact]
    public async Task Hellos_openssl_serves_TLS_for_hello_localhost_with_the_images_certificate()
    {
        // serve.sh's own command, on a free port of this machine instead of [::]:8443.
        var root = Unpack("hello", "v1");
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var psi = new ProcessStartInfo("chroot") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { root, "/usr/bin/openssl", "s_server", "-accept", $"127.0.0.1:{port}", "-cert", "/app/tls/cert.pem", "-key", "/app/tls/key.pem", "-naccept", "1", "-quiet" })
        {
            psi.ArgumentList.Add(a);
        }
        using var server = Process.Start(psi)!;
        var stderr = server.StandardError.ReadToEndAsync();
        try
        {
            var expected = X509Certificate2.CreateFromPem(File.ReadAllText(DevExamples.HelloCertificate(world.DevDir)));
            using var tcp = await ConnectAsync(port, server, stderr);
            X509Certificate2? seen = null;
            await using var tls = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) =>
            {
                seen = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return true;
            });
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = DevExamples.HelloHostname }, Minutes(1));
            Assert.NotNull(seen);
            Assert.Equal(expected.RawData, seen!.RawData);
            Assert.True(seen.MatchesHostname(DevExamples.HelloHostname));
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }
            await server.WaitForExitAsync();
        }
    }

    private static async Task<TcpClient> ConnectAsync(int port, Process server, Task<string> stderr)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var tcp = new TcpClient();
            try
            {
                await tcp.ConnectAsync(IPAddress.Loopback, port);
                return tcp;
            }
            catch (SocketException)
            {
                tcp.Dispose();
                if (server.HasExited)
                {
                    Assert.Fail($"openssl s_server exited with {server.ExitCode}: {await stderr}");
                }
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), "openssl s_server did not listen within 20 s");
                await Task.Delay(50);
            }
        }
    }

    // ---- a missing tool ----------------------------------------------------------------------------

    [MountNamespaceFact]
    public void Without_busybox_on_this_machine_the_build_fails_naming_the_package()
    {
        // busybox lives in /usr/bin, which DevExamples always searches besides PATH: to take it away
        // without touching this machine, one thread of this process gets a mount namespace of its
        // own with an empty /usr/bin. The namespace ends with the thread. The TLS material exists
        // already, so EnsureAsync reaches the busybox lookup without an await, on that thread.
        var images = Path.Combine(world.Root.FullName, "images-without-busybox");
        Exception? failure = null;
        string? setupProblem = null;
        var progress = new List<string>();
        var thread = new Thread(() =>
        {
            if (Native.unshare(Native.CloneNewNs) != 0)
            {
                setupProblem = $"unshare(CLONE_NEWNS): {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}";
                return;
            }
            if (Native.mount("none", "/", null, Native.MsRec | Native.MsPrivate, IntPtr.Zero) != 0
                || Native.mount("tmpfs", "/usr/bin", "tmpfs", 0, IntPtr.Zero) != 0)
            {
                setupProblem = $"mount: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}";
                return;
            }
            if (File.Exists("/usr/bin/busybox") || File.Exists("/bin/busybox"))
            {
                setupProblem = "busybox is still visible in the private mount namespace";
                return;
            }
            var task = DevExamples.EnsureAsync(world.DevDir, images, progress.Add, CancellationToken.None);
            failure = task.IsFaulted ? task.Exception!.InnerException : new InvalidOperationException($"EnsureAsync did not fail at once on this thread (status {task.Status})");
        });
        thread.Start();
        thread.Join();

        Assert.True(File.Exists(HostTool.Find("busybox")), "busybox is back for the rest of the process");
        Assert.Null(setupProblem);
        var setup = Assert.IsType<DevSetupException>(failure);
        Assert.Contains("'busybox' is not installed", setup.Message);
        Assert.Contains("apt-get install busybox-static", setup.Message);
        Assert.Empty(Directory.GetDirectories(Path.Combine(world.DevDir, "examples"), ".build-*"));
        Assert.False(Directory.Exists(Path.Combine(images, "hello", "blobs")), "nothing was built");
    }

    private static class Native
    {
        public const int CloneNewNs = 0x00020000;
        public const ulong MsRec = 16384;
        public const ulong MsPrivate = 1 << 18;

        [DllImport("libc", SetLastError = true)]
        public static extern int unshare(int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int mount(string source, string target, string? fileSystemType, ulong flags, IntPtr data);
    }
}
