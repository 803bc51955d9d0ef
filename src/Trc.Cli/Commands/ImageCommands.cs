using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Trc.Cli.Remote;
using Trc.Core.Manifest;
using Trc.Oci.Build;
using Trc.Oci.Images;
using Trc.Oci.Layers;
using Trc.Oci.Pull;
using Trc.Oci.Registry;
using Trc.Oci.RootDisks;
using Trc.Oci.Store;

namespace Trc.Cli.Commands;

/// <summary><c>trc image</c>: make, pull and inspect OCI images, and build root disks from them.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class ImageCommands
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static Command Create(CliConsole console)
    {
        var image = new Command("image", """
            OCI images: make one from a directory, resolve a tag to its digests, pull an image into
            the local cache, build the read-only ext4 root disk a microVM boots from.

            A REF is a registry reference (registry.example.com/team/app:v1, app@sha256:...) or a
            local OCI layout (oci:DIR[:TAG]). Loopback registries are reached over plain HTTP,
            others over HTTPS unless listed with --insecure-registry. Credentials come from a
            Docker-style credentials file (--registry-auth; default $REGISTRY_AUTH_FILE, then
            ~/.docker/config.json when it exists).
            """);
        image.Subcommands.Add(FromDir(console));
        image.Subcommands.Add(Resolve(console));
        image.Subcommands.Add(Pull(console));
        image.Subcommands.Add(Rootfs(console));
        image.Subcommands.Add(Gc(console));
        return image;
    }

    // ---- from-dir ----------------------------------------------------------------------------------

    private static Command FromDir(CliConsole console)
    {
        var dir = new Argument<string>("DIR") { Description = "The directory that becomes the image's root." };
        var output = new Option<string>("--out") { Description = "Where to write it: oci:LAYOUT:TAG (the layout is created if missing).", Required = true, HelpName = "oci:LAYOUT:TAG" };
        var entrypoint = new Option<string[]>("--entrypoint") { Description = "The entrypoint, one argument per option (repeat).", HelpName = "ARG" };
        var cmd = new Option<string[]>("--cmd") { Description = "The command (arguments to the entrypoint), one per option (repeat).", HelpName = "ARG" };
        var env = new Option<string[]>("--env") { Description = "An environment variable NAME=value (repeat).", HelpName = "NAME=VALUE" };
        var workdir = new Option<string?>("--workdir") { Description = "The working directory.", HelpName = "PATH" };
        var user = new Option<string?>("--user") { Description = "The user to run as (name, uid, or uid:gid).", HelpName = "USER" };
        var arch = new Option<string?>("--arch") { Description = "The architecture recorded in the config. Default: this machine's.", HelpName = "ARCH" };
        var mtime = new Option<long?>("--mtime") { Description = "Give every file this modification time (Unix seconds), for reproducible digests. Default: $SOURCE_DATE_EPOCH, else each file's own.", HelpName = "SECONDS" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var command = new Command("from-dir", """
            Make a single-layer OCI image from a directory: regular files, directories, symlinks
            and hard links with their modes, owned by root; sockets, FIFOs and devices are left
            out (and listed). Prints the manifest digest.

            Examples:
              trc image from-dir ./rootfs --out oci:./images:v1 --entrypoint /bin/app
              trc image from-dir ./site --out oci:/tmp/layout:web --cmd /bin/httpd --cmd -f --env PORT=8080
            """);
        command.Arguments.Add(dir);
        foreach (var option in new Option[] { output, entrypoint, cmd, env, workdir, user, arch, mtime, json })
        {
            command.Options.Add(option);
        }
        command.SetAction((parse, ct) => Guard(console, "from-dir", () =>
        {
            var directory = Full(console, parse.GetValue(dir)!);
            var outText = parse.GetValue(output)!;
            if (!OciLayoutReference.TryParse(outText, out var layout, out var layoutError))
            {
                throw new CliFailure(ExitCodes.Usage, $"--out: {layoutError}");
            }
            if (layout.Tag is null)
            {
                throw new CliFailure(ExitCodes.Usage, $"--out {outText}: name the tag too, as oci:LAYOUT:TAG");
            }
            foreach (var variable in parse.GetValue(env) ?? [])
            {
                if (variable.IndexOf('=', StringComparison.Ordinal) <= 0)
                {
                    throw new CliFailure(ExitCodes.Usage, $"--env {RemoteContext.Printable(variable)}: write NAME=value");
                }
            }
            DateTimeOffset? time = null;
            if (parse.GetValue(mtime) is { } seconds)
            {
                time = DateTimeOffset.FromUnixTimeSeconds(seconds);
            }
            else if (console.GetEnvironmentVariable("SOURCE_DATE_EPOCH") is { Length: > 0 } epoch)
            {
                time = long.TryParse(epoch, out var s) ? DateTimeOffset.FromUnixTimeSeconds(s)
                    : throw new CliFailure(ExitCodes.Usage, "SOURCE_DATE_EPOCH is not a number of seconds");
            }
            var options = new DirectoryImageOptions
            {
                Entrypoint = NullIfEmpty(parse.GetValue(entrypoint)),
                Cmd = NullIfEmpty(parse.GetValue(cmd)),
                Env = NullIfEmpty(parse.GetValue(env)),
                WorkingDir = parse.GetValue(workdir),
                User = parse.GetValue(user),
                Architecture = parse.GetValue(arch),
                ModificationTime = time,
            };
            var built = DirectoryImageBuilder.Build(directory, Full(console, layout.Directory), layout.Tag, options, ct);
            if (parse.GetValue(json))
            {
                console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    Reference = outText,
                    ManifestDigest = built.ManifestDigest.ToString(),
                    ConfigDigest = built.ConfigDigest.ToString(),
                    LayerDigest = built.LayerDigest.ToString(),
                    built.LayerSize,
                    DiffId = built.DiffId.ToString(),
                    built.Entries,
                    built.Skipped,
                }, Json));
                return Task.FromResult(ExitCodes.Ok);
            }
            foreach (var skipped in built.Skipped)
            {
                console.Err.WriteLine($"trc image from-dir: left out {RemoteContext.Printable(skipped)} (not a file, directory or symlink)");
            }
            console.Out.WriteLine($"{outText}@{built.ManifestDigest} ({built.Entries} entries, layer {ByteSize.Format(built.LayerSize)} gzip)");
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }

    // ---- resolve -----------------------------------------------------------------------------------

    private static Command Resolve(CliConsole console)
    {
        var reference = new Argument<string>("REF") { Description = "The image." };
        var registry = RegistryOptions.Create();
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var command = new Command("resolve", """
            Resolve a reference once, as trc deploy does: print the digest it names (the pinned
            reference) and, for a multi-platform index, each platform's manifest digest. Nothing
            is downloaded but manifests.

            Examples:
              trc image resolve registry.example.com/shop:v3
              trc image resolve 127.0.0.1:5000/app:latest --json
            """);
        command.Arguments.Add(reference);
        registry.AddTo(command);
        command.Options.Add(json);
        command.SetAction((parse, ct) => Guard(console, "resolve", async () =>
        {
            using var run = registry.Open(parse, console, parse.GetValue(reference)!);
            var resolved = await new ImagePuller(run.Store).ResolveAsync(run.Source, run.Platform, ct).ConfigureAwait(false);
            PrintResolved(console, run.Source, resolved, parse.GetValue(json));
            return ExitCodes.Ok;
        }));
        return command;
    }

    // ---- pull --------------------------------------------------------------------------------------

    private static Command Pull(CliConsole console)
    {
        var reference = new Argument<string>("REF") { Description = "The image." };
        var registry = RegistryOptions.Create();
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var command = new Command("pull", """
            Pull an image into the local cache (an OCI layout at CACHE/oci): resolve the reference
            for the platform, download the config and the layers not cached yet, each checked
            against its digest and size as it arrives. Progress goes to stderr; the pinned
            reference to stdout.

            Examples:
              trc image pull registry.example.com/shop:v3
              trc image pull oci:./images:v1 --cache /var/lib/trc/images
            """);
        command.Arguments.Add(reference);
        registry.AddTo(command);
        command.Options.Add(json);
        command.SetAction((parse, ct) => Guard(console, "pull", async () =>
        {
            using var run = registry.Open(parse, console, parse.GetValue(reference)!);
            var pulled = await PullWithProgressAsync(console, run, ct).ConfigureAwait(false);
            PrintResolved(console, run.Source, pulled.Resolved, parse.GetValue(json));
            return ExitCodes.Ok;
        }));
        return command;
    }

    // ---- rootfs ------------------------------------------------------------------------------------

    private static Command Rootfs(CliConsole console)
    {
        var reference = new Argument<string>("REF") { Description = "The image." };
        var registry = RegistryOptions.Create();
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var command = new Command("rootfs", """
            Pull an image and build its read-only ext4 root disk: the layers are applied in order
            (whiteouts, links, modes, owners; every path confined to the root), then mkfs.ext4 -d
            writes the disk, sized to the content plus headroom. Disks are cached by manifest
            digest under CACHE/rootfs, each with the image's run config (entrypoint, cmd, env,
            working dir, user) beside it as JSON. Prints the disk's path.

            Examples:
              trc image rootfs registry.example.com/shop@sha256:4f1c...e9a0
              trc image rootfs oci:./images:v1 --cache /tmp/images --json
            """);
        command.Arguments.Add(reference);
        registry.AddTo(command);
        command.Options.Add(json);
        command.SetAction((parse, ct) => Guard(console, "rootfs", async () =>
        {
            using var run = registry.Open(parse, console, parse.GetValue(reference)!);
            var source = run.Source;
            var pulled = await PullWithProgressAsync(console, run, ct).ConfigureAwait(false);
            var disk = await BuildRootDiskAsync(console, run.Store, new RootDiskCache(Path.Combine(run.Cache, "rootfs")), pulled, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    Reference = source.Name,
                    Pinned = Pinned(source, pulled.Resolved),
                    ManifestDigest = disk.ManifestDigest.ToString(),
                    Disk = disk.ImagePath,
                    Config = disk.ConfigPath,
                    disk.SizeBytes,
                    ContentBytes = disk.Config.ContentBytes,
                    disk.Config.Inodes,
                }, Json));
                return ExitCodes.Ok;
            }
            console.Out.WriteLine(disk.ImagePath);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Gc(CliConsole console)
    {
        var registry = RegistryOptions.ForCache();
        var unused = new Option<string>("--unused-for") { Description = "Delete root disks not used for this long (like 30m, 12h, 7d). Default: 7d.", HelpName = "AGE", DefaultValueFactory = _ => "7d" };
        var command = new Command("gc", """
            Delete cached root disks not used for a while, abandoned partial builds, and the
            cached blobs no remaining disk was built from.

            Example:
              trc image gc --unused-for 1d
            """);
        registry.AddTo(command);
        command.Options.Add(unused);
        command.SetAction((parse, ct) => Guard(console, "gc", () =>
        {
            var age = ParseAge(parse.GetValue(unused)!);
            var cache = registry.CacheDirectory(parse, console);
            var disks = new RootDiskCache(Path.Combine(cache, "rootfs"));
            var result = disks.CollectGarbage(new HashSet<Digest>(), age);
            var store = new BlobStore(Path.Combine(cache, "oci"));
            var blobs = ImageGarbage.Collect(store, disks.Published().Select(d => d.ManifestDigest), age);
            console.Out.WriteLine($"Deleted {result.DisksDeleted} root disk{(result.DisksDeleted == 1 ? "" : "s")} ({ByteSize.Format(result.BytesFreed)}), {blobs.Blobs} blob{(blobs.Blobs == 1 ? "" : "s")} ({ByteSize.Format(blobs.Bytes)}).");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static TimeSpan ParseAge(string text)
    {
        if (text.Length >= 2 && long.TryParse(text.AsSpan(0, text.Length - 1), out var n) && n >= 0)
        {
            switch (text[^1])
            {
                case 'm': return TimeSpan.FromMinutes(n);
                case 'h': return TimeSpan.FromHours(n);
                case 'd': return TimeSpan.FromDays(n);
            }
        }
        throw new CliFailure(ExitCodes.Usage, $"--unused-for {RemoteContext.Printable(text)}: write a number and m, h or d, like 30m or 7d");
    }

    internal static async Task<RootDisk> BuildRootDiskAsync(CliConsole console, BlobStore store, RootDiskCache disks, PulledImage pulled, CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var puller = new ImagePuller(store);
        var progress = new InlineProgress<RootDiskProgress>(p =>
        {
            var line = p.Phase switch
            {
                RootDiskPhase.Waiting => "  waiting for another build of this disk",
                RootDiskPhase.Populating => "  applying layers",
                RootDiskPhase.Sizing => $"  {ByteSize.Format(p.Bytes)} in {p.Inodes} inodes",
                RootDiskPhase.Formatting => $"  mkfs.ext4: {ByteSize.Format(p.Bytes)} disk",
                RootDiskPhase.FixingOwners => "  setting owners",
                _ => null,
            };
            if (line is not null)
            {
                console.Err.WriteLine(line);
            }
        });
        var options = new LayerApplierOptions { ApplyOwnership = true };
        var disk = await disks.GetOrBuildAsync(pulled.Resolved.ManifestDigest, pulled.Config,
            (directory, token) => Task.Run(() => puller.Unpack(pulled, directory, options, token), token), progress, ct).ConfigureAwait(false);
        console.Err.WriteLine($"Root disk {ByteSize.Format(disk.SizeBytes)} ready in {started.Elapsed.TotalSeconds:0.0} s");
        return disk;
    }

    // ---- shared ------------------------------------------------------------------------------------

    internal static async Task<PulledImage> PullWithProgressAsync(CliConsole console, ImageRun run, CancellationToken ct)
    {
        var (client, store, source, platform) = (run.Client, run.Store, run.Source, run.Platform);
        var gate = new object();
        var started = System.Diagnostics.Stopwatch.StartNew();
        console.Err.WriteLine($"Pulling {RemoteContext.Printable(source.Name)} for {platform ?? ImagePlatform.Host}");
        var progress = new InlineProgress<PullProgress>(p =>
        {
            lock (gate)
            {
                switch (p.Phase)
                {
                    case PullPhase.Resolved:
                        var r = p.Resolved!;
                        console.Err.WriteLine(r.RootDigest == r.ManifestDigest
                            ? $"  manifest {r.ManifestDigest}: {r.Manifest.Layers.Count} layers, {ByteSize.Format(p.Total)}"
                            : $"  index {r.RootDigest} -> {r.Platform} manifest {r.ManifestDigest}: {r.Manifest.Layers.Count} layers, {ByteSize.Format(p.Total)}");
                        break;
                    case PullPhase.LayerCached:
                        console.Err.WriteLine($"  layer {Short(p.Blob!)} {ByteSize.Format(p.Total)} cached");
                        break;
                    case PullPhase.LayerDone:
                        console.Err.WriteLine($"  layer {Short(p.Blob!)} {ByteSize.Format(p.Total)} done");
                        break;
                }
            }
        });
        var pulled = await new ImagePuller(store, client.Options.ParallelDownloads).PullAsync(source, platform, progress, ct).ConfigureAwait(false);
        console.Err.WriteLine($"Pulled in {started.Elapsed.TotalSeconds:0.0} s");
        return pulled;
    }

    private static void PrintResolved(CliConsole console, ImageSource source, ResolvedImage resolved, bool json)
    {
        var pinned = Pinned(source, resolved);
        if (json)
        {
            console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                Reference = source.Name,
                Pinned = pinned,
                Digest = resolved.RootDigest.ToString(),
                resolved.RootMediaType,
                ManifestDigest = resolved.ManifestDigest.ToString(),
                resolved.Platform,
                PlatformDigests = resolved.PlatformDigests.ToDictionary(p => p.Key, p => p.Value.ToString()),
            }, Json));
            return;
        }
        console.Out.WriteLine(pinned);
        foreach (var (platform, digest) in resolved.PlatformDigests)
        {
            console.Out.WriteLine($"  {platform} {digest}{(digest == resolved.ManifestDigest ? " (this machine)" : "")}");
        }
    }

    /// <summary>The reference pinned to the digest it resolved to (<c>repo@sha256:...</c>).</summary>
    internal static string Pinned(ImageSource source, ResolvedImage resolved) => source switch
    {
        RegistryImageSource r => $"{r.Reference.Registry}/{r.Reference.Repository}@{resolved.RootDigest}",
        _ => $"{source.Name}@{resolved.RootDigest}",
    };

    private static string Short(Digest digest) => $"{digest.Algorithm}:{digest.Hex[..12]}";

    private static IReadOnlyList<string>? NullIfEmpty(string[]? values) => values is { Length: > 0 } ? values : null;

    private static string Full(CliConsole console, string path) => Path.GetFullPath(path, console.WorkingDirectory);

    /// <summary>Runs a command body, turning the image stack's errors into messages and exit codes.</summary>
    internal static async Task<int> Guard(CliConsole console, string name, Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (CliFailure e)
        {
            console.Err.WriteLine($"trc image {name}: {e.Message}");
            return e.ExitCode;
        }
        catch (RegistryException e)
        {
            console.Err.WriteLine($"trc image {name}: {e.Message}");
            return RegistryOptions.ExitCode(e);
        }
        catch (Exception e) when (e is PlatformNotFoundException or OciFormatException or LayerException or RegistryCredentialsException or BlobStoreException)
        {
            console.Err.WriteLine($"trc image {name}: {e.Message}");
            return ExitCodes.Invalid;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            console.Err.WriteLine($"trc image {name}: {e.Message}");
            return ExitCodes.IoError;
        }
        catch (OperationCanceledException)
        {
            console.Err.WriteLine($"trc image {name}: interrupted; nothing partial was kept");
            return ExitCodes.Interrupted;
        }
    }

    internal static Task<int> Guard(CliConsole console, string name, Func<int> body) => Guard(console, name, () => Task.FromResult(body()));
}

/// <summary>The options every command that reads images takes: cache, credentials, insecure registries, platform.</summary>
internal sealed class RegistryOptions
{
    private Option<string?> Cache { get; } = new("--cache") { Description = "The image cache directory. Default: $TRC_IMAGE_CACHE, else /var/lib/trc/images as root, else ~/.cache/trc/images.", HelpName = "DIR" };

    private Option<string?> Auth { get; } = new("--registry-auth") { Description = "A Docker-style credentials file ({\"auths\": {HOST: {\"auth\": base64(user:password)}}}). Default: $REGISTRY_AUTH_FILE, else ~/.docker/config.json if present.", HelpName = "FILE" };

    private Option<string[]> Insecure { get; } = new("--insecure-registry") { Description = "Reach this registry (HOST[:PORT]) over plain HTTP (repeat). Loopback registries always are.", HelpName = "HOST" };

    private Option<string?> PlatformOption { get; } = new("--platform") { Description = "The platform to resolve an index for: os/arch[/variant]. Default: linux on this machine's architecture.", HelpName = "OS/ARCH" };

    private bool _resolvingOnly;

    public static RegistryOptions Create() => new();

    /// <summary>Only what reaching a registry needs (no cache, no platform): for trc deploy.</summary>
    public static RegistryOptions ForResolving() => new() { _resolvingOnly = true };

    /// <summary>Only the cache directory: for trc image gc.</summary>
    public static RegistryOptions ForCache() => new() { _cacheOnly = true };

    private bool _cacheOnly;

    public void AddTo(Command command)
    {
        if (_cacheOnly)
        {
            command.Options.Add(Cache);
            return;
        }
        command.Options.Add(Auth);
        command.Options.Add(Insecure);
        if (!_resolvingOnly)
        {
            command.Options.Add(Cache);
            command.Options.Add(PlatformOption);
        }
    }

    /// <summary>The exit code for a registry failure: 4 auth, 5 unreachable, 1 anything about the image itself.</summary>
    public static int ExitCode(RegistryException e) => e.Kind switch
    {
        RegistryErrorKind.Unauthorized or RegistryErrorKind.Denied => ExitCodes.NotAuthorized,
        RegistryErrorKind.Unavailable => ExitCodes.Unavailable,
        _ => ExitCodes.Invalid,
    };

    /// <summary>What a command that reads an image works with: the client, the source, the cache.</summary>
    public ImageRun Open(ParseResult parse, CliConsole console, string reference)
    {
        var client = CreateClient(parse, console);
        try
        {
            var cache = CacheDirectory(parse, console);
            return new ImageRun(client, Source(reference, client), new BlobStore(Path.Combine(cache, "oci")), cache, Platform(parse));
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private static ImageSource Source(string text, RegistryClient client)
    {
        try
        {
            return ImageSource.Parse(text, client);
        }
        catch (FormatException e)
        {
            throw new CliFailure(ExitCodes.Usage, e.Message);
        }
    }

    public ImagePlatform? Platform(ParseResult parse)
    {
        if (parse.GetValue(PlatformOption) is not { } text)
        {
            return null;
        }
        try
        {
            return ImagePlatform.Parse(text);
        }
        catch (FormatException e)
        {
            throw new CliFailure(ExitCodes.Usage, $"--platform: {e.Message}");
        }
    }

    public string CacheDirectory(ParseResult parse, CliConsole console)
    {
        var chosen = parse.GetValue(Cache) ?? console.GetEnvironmentVariable("TRC_IMAGE_CACHE");
        if (chosen is { Length: > 0 })
        {
            return Path.GetFullPath(chosen, console.WorkingDirectory);
        }
        if (Environment.IsPrivilegedProcess)
        {
            return "/var/lib/trc/images";
        }
        var cacheHome = console.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(console.GetEnvironmentVariable("HOME") ?? ".", ".cache");
        return Path.Combine(cacheHome, "trc", "images");
    }

    public RegistryClient CreateClient(ParseResult parse, CliConsole console)
    {
        var credentials = RegistryCredentialStore.Empty;
        var file = parse.GetValue(Auth) ?? console.GetEnvironmentVariable("REGISTRY_AUTH_FILE");
        if (file is { Length: > 0 })
        {
            credentials = RegistryCredentialStore.Load(Path.GetFullPath(file, console.WorkingDirectory));
        }
        else if (console.GetEnvironmentVariable("HOME") is { Length: > 0 } home && File.Exists(Path.Combine(home, ".docker", "config.json")))
        {
            credentials = RegistryCredentialStore.Load(Path.Combine(home, ".docker", "config.json"));
        }
        return new RegistryClient(new RegistryClientOptions
        {
            Credentials = credentials,
            InsecureRegistries = parse.GetValue(Insecure) ?? [],
        });
    }
}

/// <summary>The registry client, image source and cache one <c>trc image</c> command uses.</summary>
internal sealed record ImageRun(RegistryClient Client, ImageSource Source, BlobStore Store, string Cache, ImagePlatform? Platform) : IDisposable
{
    public void Dispose() => Client.Dispose();
}
