using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trc.Testing.Registry;

/// <summary>How a <see cref="LocalRegistry"/> authenticates.</summary>
public abstract record RegistryAuth
{
    private RegistryAuth()
    {
    }

    /// <summary>No auth section: anyone may pull and push.</summary>
    public static RegistryAuth Anonymous { get; } = new AnonymousAuth();

    /// <summary>HTTP Basic against an htpasswd file holding one bcrypt user.</summary>
    public static RegistryAuth Htpasswd(string user, string password) => new HtpasswdAuth(user, password);

    /// <summary>Bearer tokens from a <see cref="TokenServer"/> the registry owns and starts first.</summary>
    public static RegistryAuth Token(TokenServerOptions? options = null) => new TokenAuth(options ?? new TokenServerOptions());

    public sealed record AnonymousAuth : RegistryAuth;

    public sealed record HtpasswdAuth(string User, string Password) : RegistryAuth;

    public sealed record TokenAuth(TokenServerOptions Options) : RegistryAuth;
}

/// <summary>
/// A real docker-registry (distribution 2.8) on 127.0.0.1 and a free port, storing on the filesystem
/// in a temp dir of its own, so every test class can have one and run in parallel. Disposing kills
/// it and deletes the dir.
/// </summary>
public sealed class LocalRegistry : IAsyncDisposable
{
    private const int MaxLog = 256 * 1024;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(15);
    private static readonly HttpClient Probe = new(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.Zero })
    {
        Timeout = TimeSpan.FromSeconds(2),
    };

    private readonly StringBuilder _log = new();
    private Process? _process;

    private LocalRegistry(string directory, RegistryAuth auth, TokenServer? tokens)
    {
        Directory = directory;
        Auth = auth;
        Tokens = tokens;
    }

    public RegistryAuth Auth { get; }

    /// <summary>The temp dir holding config.yml, the htpasswd file or root bundle, storage and scratch layouts.</summary>
    public string Directory { get; }

    /// <summary>The filesystem driver's root: blobs are under <c>docker/registry/v2/blobs/sha256/xx/HEX/data</c>.</summary>
    public string StorageDirectory => Path.Combine(Directory, "storage");

    public int Port { get; private set; }

    /// <summary>The registry process's id, while it runs.</summary>
    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("The registry is not running.");

    /// <summary><c>127.0.0.1:PORT</c>, as an image reference names the registry.</summary>
    public string Host => $"127.0.0.1:{Port}";

    public Uri BaseUri => new($"http://{Host}/");

    /// <summary>The token server of a <see cref="RegistryAuth.Token"/> registry; null otherwise.</summary>
    public TokenServer? Tokens { get; }

    /// <summary>Credentials that may push (the htpasswd or token user), or null for an anonymous registry.</summary>
    public FixtureCredentials? Credentials => Auth switch
    {
        RegistryAuth.HtpasswdAuth h => new FixtureCredentials(h.User, h.Password),
        RegistryAuth.TokenAuth t => new FixtureCredentials(t.Options.User, t.Options.Password),
        _ => null,
    };

    /// <summary>How long the last start took, from process start to the first answer of <c>/v2/</c>.</summary>
    public TimeSpan StartupTime { get; private set; }

    /// <summary>The registry's stdout and stderr so far (capped), for a failing test's message.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static async Task<LocalRegistry> StartAsync(RegistryAuth auth, CancellationToken ct)
    {
        var directory = Path.Combine(Path.GetTempPath(), "trc-registry-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(directory);
        var tokens = auth is RegistryAuth.TokenAuth t ? new TokenServer(t.Options) : null;
        var registry = new LocalRegistry(directory, auth, tokens);
        try
        {
            await registry.StartProcessAsync(ct);
            return registry;
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Pushes a one-layer image of these files as <c>repository:tag</c> (through a layout in the
    /// registry's dir), with the registry's own credentials.
    /// </summary>
    public async Task<LayoutImage> PushAsync(
        string repository, string tag, IReadOnlyDictionary<string, byte[]> files, CancellationToken ct, ImageSpec? spec = null, string? format = null)
    {
        var image = await ImageTools.CreateUmociLayoutAsync(NewLayoutDir(), tag, files, spec, ct);
        await ImageTools.SkopeoCopyAsync(image.OciReference, Reference(repository, tag), null, Credentials, all: false, ct, format);
        return image;
    }

    /// <summary>Pushes an OCI index of one image per platform as <c>repository:tag</c> (default linux/amd64 and linux/arm64/v8).</summary>
    public async Task<LayoutIndex> PushMultiArchAsync(string repository, string tag, CancellationToken ct, IReadOnlyList<ImageSpec>? platforms = null)
    {
        var index = await ImageTools.CreateMultiArchIndexAsync(NewLayoutDir(), tag, platforms ?? ImageTools.AmdAndArm, ct);
        await ImageTools.SkopeoCopyAsync(index.OciReference, Reference(repository, tag), null, Credentials, all: true, ct);
        return index;
    }

    /// <summary><c>docker://HOST/repository:tag</c> for skopeo.</summary>
    public string Reference(string repository, string tagOrDigest) =>
        $"docker://{Host}/{repository}{(tagOrDigest.Contains(':', StringComparison.Ordinal) ? "@" : ":")}{tagOrDigest}";

    /// <summary>Where the registry stores a blob's bytes (to corrupt one on disk).</summary>
    public string BlobDataPath(string digest)
    {
        var colon = digest.IndexOf(':');
        var hex = digest[(colon + 1)..];
        return Path.Combine(StorageDirectory, "docker", "registry", "v2", "blobs", digest[..colon], hex[..2], hex, "data");
    }

    private string NewLayoutDir() => Path.Combine(Directory, "layouts", Guid.NewGuid().ToString("N"));

    private async Task StartProcessAsync(CancellationToken ct)
    {
        var configPath = Path.Combine(Directory, "config.yml");
        WriteAuthFiles();
        // The port is free when we read it and may be taken before the registry binds it; the
        // registry then exits with "address already in use" and we try another.
        for (var attempt = 1; ; attempt++)
        {
            Port = FreePort();
            await File.WriteAllTextAsync(configPath, Config(), ct);
            var started = Stopwatch.StartNew();
            StartProcess(configPath);
            var outcome = await WaitUntilReadyAsync(ct);
            if (outcome == Readiness.Ready)
            {
                StartupTime = started.Elapsed;
                return;
            }
            var log = Log;
            await StopProcessAsync();
            if (outcome == Readiness.Exited && log.Contains("address already in use", StringComparison.Ordinal) && attempt < 5)
            {
                lock (_log)
                {
                    _log.Clear();
                }
                continue;
            }
            throw new InvalidOperationException(
                outcome == Readiness.Exited
                    ? $"docker-registry exited before answering GET /v2/ on {Host}. Its output:\n{log}"
                    : $"docker-registry did not answer GET /v2/ on {Host} within {ReadyTimeout.TotalSeconds} s. Its output:\n{log}");
        }
    }

    private void WriteAuthFiles()
    {
        switch (Auth)
        {
            case RegistryAuth.HtpasswdAuth h:
                File.WriteAllText(Path.Combine(Directory, "htpasswd"), Htpasswd.Line(h.User, h.Password) + "\n");
                break;
            case RegistryAuth.TokenAuth:
                File.WriteAllText(Path.Combine(Directory, "token-root.pem"), Tokens!.RootCertificatePem);
                break;
        }
    }

    private string Config()
    {
        var auth = Auth switch
        {
            RegistryAuth.HtpasswdAuth => $"""
                auth:
                  htpasswd:
                    realm: trc-test-registry
                    path: {Quote(Path.Combine(Directory, "htpasswd"))}
                """,
            RegistryAuth.TokenAuth => $"""
                auth:
                  token:
                    realm: {Quote(Tokens!.Realm.ToString())}
                    service: {Quote(Tokens.Options.Service)}
                    issuer: {Quote(Tokens.Options.Issuer)}
                    rootcertbundle: {Quote(Path.Combine(Directory, "token-root.pem"))}
                """,
            _ => "",
        };
        // Level error: no per-request info lines; a failed request still logs (Log is capped).
        // No upload purging: its background walk is noise and a test's uploads live seconds.
        return $"""
            version: 0.1
            log:
              level: error
              formatter: text
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {Quote(StorageDirectory)}
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: {Host}
              headers:
                X-Content-Type-Options: [nosniff]
            {auth}

            """;
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private void StartProcess(string configPath)
    {
        var psi = new ProcessStartInfo("docker-registry")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Directory,
        };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(configPath);
        // REGISTRY_* variables override config.yml; none of the caller's may leak in.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("REGISTRY_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            process.Dispose();
            throw new InvalidOperationException($"Could not start docker-registry ({e.Message}); scripts/install-test-deps installs it.", e);
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_log)
        {
            if (_log.Length < MaxLog)
            {
                _log.AppendLine(line);
            }
        }
    }

    private enum Readiness
    {
        Ready,
        Exited,
        TimedOut,
    }

    private async Task<Readiness> WaitUntilReadyAsync(CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        var delay = TimeSpan.FromMilliseconds(5);
        while (deadline.Elapsed < ReadyTimeout)
        {
            if (_process!.HasExited)
            {
                // Let the output readers drain, so the message carries the reason.
                await _process.WaitForExitAsync(ct);
                return Readiness.Exited;
            }
            try
            {
                using var response = await Probe.GetAsync(new Uri(BaseUri, "v2/"), ct);
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                {
                    return Readiness.Ready;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                // The probe's own timeout.
            }
            await Task.Delay(delay, ct);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 100));
        }
        return Readiness.TimedOut;
    }

    private async Task StopProcessAsync()
    {
        if (_process is not { } process)
        {
            return;
        }
        _process = null;
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (InvalidOperationException)
        {
            // It was never started, or already reaped.
        }
        catch (OperationCanceledException)
        {
            // A process that outlives SIGKILL by 10 s is beyond a test's help.
        }
        process.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await StopProcessAsync();
        if (Tokens is not null)
        {
            await Tokens.DisposeAsync();
        }
        ImageTools.DeleteDirectory(Directory);
    }
}
