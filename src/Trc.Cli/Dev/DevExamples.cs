using System.Diagnostics;
using System.Reflection;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Trc.Agent.Runtime;
using Trc.Oci.Build;
using Trc.Oci.Images;
using Trc.Oci.Layout;

namespace Trc.Cli.Dev;

/// <summary>One example image <c>trc dev</c> serves from its registry.</summary>
/// <param name="Repository">The repository (and example directory) name.</param>
/// <param name="Tag">The tag.</param>
/// <param name="Description">What it is, for the progress output.</param>
internal sealed record DevExampleImage(string Repository, string Tag, string Description);

/// <summary>
/// The example apps of <c>examples/</c> as images, built on this machine from its own binaries
/// (busybox, openssl and the libraries it links) and the example's scripts, which are compiled
/// into trc. Nothing is downloaded. Each image is a one-layer OCI layout under
/// <c>IMAGES/REPOSITORY</c>, with every file's time fixed, so the same host binaries give the same
/// digest. The hello example's TLS key and certificate are made once per dev directory.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class DevExamples
{
    /// <summary>The hostname hello's certificate names (and its route in examples/hello/trc.toml).</summary>
    public const string HelloHostname = "hello.localhost";

    /// <summary>The images trc dev provides.</summary>
    public static IReadOnlyList<DevExampleImage> Images { get; } =
    [
        new("hello", "v1", "an HTTPS app serving its own certificate (openssl s_server)"),
        new("hello", "broken", "the same app without its TLS key: it exits at start"),
        new("echo", "v1", "a raw TCP echo server (busybox nc)"),
    ];

    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    private static readonly DateTimeOffset FixedTime = DateTimeOffset.FromUnixTimeSeconds(1_767_225_600); // 2026-01-01

    /// <summary>Where the hello example's certificate is kept in a dev directory (readable by anyone; it is public).</summary>
    public static string HelloCertificate(string devDirectory) => Path.Combine(devDirectory, "examples", "hello.crt");

    /// <summary>Builds every example image whose tag the layout does not have yet.</summary>
    /// <param name="devDirectory">trc dev's directory (the TLS key lives under it).</param>
    /// <param name="imagesDirectory">The registry's layouts.</param>
    /// <param name="progress">Progress lines.</param>
    /// <param name="ct">Cancels.</param>
    public static async Task EnsureAsync(string devDirectory, string imagesDirectory, Action<string> progress, CancellationToken ct)
    {
        var tls = await EnsureHelloCertificateAsync(devDirectory, imagesDirectory, ct).ConfigureAwait(false);
        foreach (var image in Images)
        {
            var layout = Path.Combine(imagesDirectory, image.Repository);
            if (HasTag(layout, image.Tag))
            {
                continue;
            }
            progress($"building the example image {image.Repository}:{image.Tag}: {image.Description}");
            var stopwatch = Stopwatch.StartNew();
            var root = Path.Combine(devDirectory, "examples", $".build-{image.Repository}-{image.Tag}");
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
            try
            {
                await StageAsync(image, root, tls, ct).ConfigureAwait(false);
                var built = DirectoryImageBuilder.Build(root, layout, image.Tag, new DirectoryImageOptions
                {
                    Env = ["PATH=/bin:/usr/bin"],
                    WorkingDir = "/",
                    ModificationTime = FixedTime,
                }, ct);
                progress($"built {image.Repository}:{image.Tag} ({built.ManifestDigest.ToString()[..19]}, {built.LayerSize / 1024} KiB) in {stopwatch.Elapsed.TotalSeconds:0.0} s");
            }
            finally
            {
                if (Directory.Exists(root))
                {
                    Directory.Delete(root, recursive: true);
                }
            }
        }
    }

    /// <summary>Whether the layout at <paramref name="layout"/> has <paramref name="tag"/>.</summary>
    private static bool HasTag(string layout, string tag)
    {
        if (!File.Exists(Path.Combine(layout, "index.json")))
        {
            return false;
        }
        try
        {
            return OciLayout.Open(layout).Find(tag) is not null;
        }
        catch (Exception e) when (e is IOException or OciFormatException or UnauthorizedAccessException or Trc.Oci.Registry.RegistryException)
        {
            return false;
        }
    }

    /// <summary>The files of one example's root.</summary>
    private static async Task StageAsync(DevExampleImage image, string root, (string Cert, string Key) tls, CancellationToken ct)
    {
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(Path.Combine(root, "tmp"));
        File.SetUnixFileMode(Path.Combine(root, "tmp"), (UnixFileMode)Convert.ToInt32("1777", 8));
        await AddBusyboxAsync(root, ct).ConfigureAwait(false);
        var app = Path.Combine(root, "app");
        Directory.CreateDirectory(app);
        switch (image.Repository)
        {
            case "hello":
                await AddWithLibrariesAsync(root, Tool("openssl"), ct).ConfigureAwait(false);
                WriteScript(app, "serve.sh", Example("hello/serve.sh"));
                Directory.CreateDirectory(Path.Combine(app, "tls"));
                File.Copy(tls.Cert, Path.Combine(app, "tls", "cert.pem"));
                if (image.Tag != "broken")
                {
                    File.Copy(tls.Key, Path.Combine(app, "tls", "key.pem"));
                }
                break;
            case "echo":
                WriteScript(app, "listen.sh", Example("echo/listen.sh"));
                WriteScript(app, "answer.sh", Example("echo/answer.sh"));
                break;
            default:
                throw new InvalidOperationException($"no recipe for the example {image.Repository}");
        }
    }

    /// <summary>The host's busybox as <c>/bin/busybox</c>, with a link for each of its applets in <c>/bin</c>.</summary>
    private static async Task AddBusyboxAsync(string root, CancellationToken ct)
    {
        var busybox = Tool("busybox");
        await AddWithLibrariesAsync(root, busybox, ct).ConfigureAwait(false);
        var bin = Path.Combine(root, "bin");
        Directory.CreateDirectory(bin);
        var target = Path.Combine(bin, "busybox");
        if (!File.Exists(target))
        {
            File.Copy(busybox, target);
        }
        var (code, list) = await HostProcess.RunAsync(busybox, ["--list"], ToolTimeout, ct).ConfigureAwait(false);
        if (code != 0)
        {
            throw new DevSetupException($"{busybox} --list failed: {list.Trim()}");
        }
        foreach (var applet in list.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var link = Path.Combine(bin, applet);
            if (applet != "busybox" && !applet.Contains('/', StringComparison.Ordinal) && !File.Exists(link))
            {
                File.CreateSymbolicLink(link, "busybox");
            }
        }
    }

    /// <summary>Copies a host binary to the same path in <paramref name="root"/>, with every library <c>ldd</c> says it loads.</summary>
    private static async Task AddWithLibrariesAsync(string root, string binary, CancellationToken ct)
    {
        CopyInto(root, binary);
        var (code, output) = await HostProcess.RunAsync(DevPaths.FindTool("ldd") ?? "ldd", [binary], ToolTimeout, ct).ConfigureAwait(false);
        if (code != 0)
        {
            // "not a dynamic executable": a static binary needs nothing more.
            return;
        }
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)".
            if (line.Contains("not found", StringComparison.Ordinal))
            {
                throw new DevSetupException($"{binary} needs a library this machine lacks ({line}): reinstall its package");
            }
            var arrow = line.IndexOf("=> ", StringComparison.Ordinal);
            var path = arrow >= 0 ? line[(arrow + 3)..] : line;
            var space = path.IndexOf(' ', StringComparison.Ordinal);
            path = space >= 0 ? path[..space] : path;
            if (path.StartsWith('/'))
            {
                CopyInto(root, path);
            }
        }
    }

    /// <summary>Copies the file a host path names (symlinks followed) to that path under <paramref name="root"/>.</summary>
    private static void CopyInto(string root, string hostPath)
    {
        var target = Path.Combine(root, hostPath.TrimStart('/'));
        if (File.Exists(target))
        {
            return;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var real = new FileInfo(hostPath).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? hostPath;
        File.Copy(real, target);
        File.SetUnixFileMode(target, File.GetUnixFileMode(real) & ~(UnixFileMode.SetUser | UnixFileMode.SetGroup));
    }

    private static void WriteScript(string directory, string name, byte[] content)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, content);
        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("755", 8));
    }

    /// <summary>A file of examples/ compiled into trc.</summary>
    internal static byte[] Example(string path)
    {
        var name = "examples/" + path;
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"{name} is not compiled into trc (see Trc.Cli.csproj)");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>A host tool the examples are made of, or a failure saying which package has it.</summary>
    private static string Tool(string name) =>
        DevPaths.FindTool(name) ?? throw new DevSetupException(
            $"'{name}' is not installed; the example images are made from this machine's own (apt-get install {(name == "busybox" ? "busybox-static" : name)}, or run scripts/dev)");

    /// <summary>The hello example's key (0600) and self-signed certificate for <see cref="HelloHostname"/>, made once.</summary>
    private static async Task<(string Cert, string Key)> EnsureHelloCertificateAsync(string devDirectory, string imagesDirectory, CancellationToken ct)
    {
        var dir = Path.Combine(devDirectory, "examples", "hello-tls");
        var cert = Path.Combine(dir, "cert.pem");
        var key = Path.Combine(dir, "key.pem");
        var shared = HelloCertificate(devDirectory);
        if (!File.Exists(cert) || !File.Exists(key))
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={HelloHostname}", ecdsa, HashAlgorithmName.SHA256);
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName(HelloHostname);
            request.CertificateExtensions.Add(names.Build());
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            using var made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(10));
            var keyOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite };
            var suffix = $".{Environment.ProcessId}.tmp";
            await using (var stream = new FileStream(key + suffix, keyOptions))
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(ecdsa.ExportPkcs8PrivateKeyPem()), ct).ConfigureAwait(false);
            }
            await File.WriteAllTextAsync(cert + suffix, made.ExportCertificatePem() + "\n", ct).ConfigureAwait(false);
            File.Move(key + suffix, key, overwrite: true);
            File.Move(cert + suffix, cert, overwrite: true);
            // Images holding an earlier key would no longer match the certificate clients check.
            var hello = Path.Combine(imagesDirectory, "hello");
            if (Directory.Exists(hello))
            {
                Directory.Delete(hello, recursive: true);
            }
        }
        if (!File.Exists(shared) || !File.ReadAllBytes(shared).AsSpan().SequenceEqual(File.ReadAllBytes(cert)))
        {
            File.Copy(cert, shared, overwrite: true);
            File.SetUnixFileMode(shared, (UnixFileMode)Convert.ToInt32("644", 8));
        }
        return (cert, key);
    }
}

/// <summary>Something trc dev needs is missing or broken (or an option is wrong); the message says what to do.</summary>
/// <param name="message">What is wrong and what to do.</param>
/// <param name="exitCode">The exit code: <see cref="ExitCodes.Unavailable"/> for what is missing, <see cref="ExitCodes.Usage"/> for a wrong option.</param>
internal sealed class DevSetupException(string message, int exitCode = ExitCodes.Unavailable) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
