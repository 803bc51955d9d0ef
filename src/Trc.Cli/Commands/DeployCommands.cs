using System.CommandLine;
using System.Text;
using System.Text.RegularExpressions;
using Trc.Cli.Remote;
using Trc.Core.Api;
using Trc.Core.Manifest;
using Trc.Oci.Images;
using Trc.Oci.Pull;
using Trc.Oci.Registry;

namespace Trc.Cli.Commands;

/// <summary><c>trc deploy</c> and <c>trc releases</c>.</summary>
internal static partial class DeployCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Deploy(console);
        yield return Releases(console);
    }

    /// <summary>REPOSITORY@sha256:64 hex (or sha512:128 hex), the form the server accepts.</summary>
    [GeneratedRegex(@"^[a-z0-9]+(?:[._\-/:][a-z0-9]+)*@(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$", RegexOptions.CultureInvariant)]
    private static partial Regex PinnedImage();

    private static Command Deploy(CliConsole console)
    {
        var image = new Option<string>("--image") { Description = "The image: REPOSITORY@sha256:<64 hex digits>, or REPOSITORY[:TAG], which is resolved once, here, to the digest it names now.", Required = true, HelpName = "IMAGE" };
        var registry = RegistryOptions.ForResolving();
        var manifest = new Option<string>("--manifest") { Description = "The manifest. Default: ./trc.toml.", HelpName = "FILE", DefaultValueFactory = _ => "trc.toml" };
        var command = new Command("deploy", """
            Deploy an image with a manifest to an env: check the manifest here first (its
            problems are printed, exit 1), then send it in one call. The server records the
            release, makes it the env's, and creates the routes and volumes the manifest lists
            that the env does not have yet, or changes those it has with other settings, all
            at once: when any part is refused (a hostname bound elsewhere, a quota, a volume
            resized), nothing is created and the server's reason is printed. It never deletes
            a route or a volume. The app is the manifest's app.

            A release always runs a digest. An image given by tag is resolved once, from this
            machine, and the pinned reference is printed and recorded; for a multi-platform index
            the digest of each platform's image is recorded too, and the nodes run exactly those.
            An image given by digest is sent as it is.

            Then the rollout is followed (blue/green): the new instances start, pass their
            health checks, take the traffic, and the old ones drain and stop. Exit 0 when it
            completes; exit 6 when it fails (an instance exits or turns unhealthy, or it is not
            ready within the server's health timeout) and the release before keeps serving.
            --detach returns once the release is recorded.

            Examples:
              trc deploy --env prod --image registry.example.com/shop@sha256:4f1c...e9a0
              trc deploy --env prod --image registry.example.com/shop:v3
              trc deploy --env staging --manifest deploy/trc.toml --image ghcr.io/acme/shop@sha256:...
            """);
        var detach = RolloutCommands.DetachOption();
        command.Options.Add(image);
        command.Options.Add(manifest);
        command.Options.Add(detach);
        registry.AddTo(command);
        var target = Target.Add(command, org: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var imageRef = context.Value(image)!;
            var (path, text, loaded) = LoadManifest(context, context.Value(manifest)!);
            var app = loaded.App;
            var (org, env) = (context.Org, context.Env);
            IReadOnlyDictionary<string, string>? resolved = null;
            if (!PinnedImage().IsMatch(imageRef))
            {
                (imageRef, resolved) = await PinAsync(context, registry, imageRef, ct).ConfigureAwait(false);
            }

            // One call: the server creates or changes the routes and volumes with the release, atomically.
            var release = await context.Client.DeployAsync(org, app, env, new DeployRequest(imageRef, text, resolved), ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(release);
                // The release first (what was made), then, followed, the rollout's end as a second document.
                return context.Value(detach) || release.Deployment is not { } n ? ExitCodes.Ok : await RolloutCommands.FollowAsync(context, app, n, ct).ConfigureAwait(false);
            }
            console.Out.WriteLine(TextTable.Clean($"Deployed release {release.Number} of {app} to {org}/{app}/{env} (manifest {path}){(release.Deployment is { } d ? $" as deployment {d}" : "")}."));
            console.Out.WriteLine($"  image:  {TextTable.Clean(release.Image)}");
            console.Out.WriteLine($"  digest: {TextTable.Clean(release.ImageDigest)}");
            // What the env now has for this release: the manifest's routes and volumes, as it declares them.
            foreach (var route in loaded.Routes)
            {
                console.Out.WriteLine($"  route:  {route.Hostname}:{route.ListenPort} -> {route.Process}:{route.BackendPort}");
            }
            foreach (var volume in loaded.Volumes)
            {
                console.Out.WriteLine($"  volume: {volume.Name} ({ByteSize.Format(volume.SizeBytes)}, process {volume.Process})");
            }
            if (context.Value(detach) || release.Deployment is not { } number)
            {
                return ExitCodes.Ok;
            }
            console.Out.WriteLine("Rolling out (Ctrl+C stops following; the rollout goes on):");
            return await RolloutCommands.FollowAsync(context, app, number, ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>Resolves a tag once to the digest it names now (and, for an index, each platform's).</summary>
    private static async Task<(string Pinned, IReadOnlyDictionary<string, string>? PerPlatform)> PinAsync(
        RemoteContext context, RegistryOptions registry, string image, CancellationToken ct)
    {
        var shown = RemoteContext.Printable(image);
        if (image.Contains('@', StringComparison.Ordinal))
        {
            throw new CliFailure(ExitCodes.Invalid, $"--image {shown}: the digest is not valid; write REPOSITORY@sha256:<64 lower-case hex digits>");
        }
        if (OciLayoutReference.HasScheme(image))
        {
            throw new CliFailure(ExitCodes.Invalid, $"--image {shown}: an oci: layout is on this machine only; push it to a registry the nodes can reach (skopeo copy {shown} docker://REGISTRY/REPO:TAG)");
        }
        if (!ImageReference.TryParse(image, out var reference, out var error))
        {
            throw new CliFailure(ExitCodes.Invalid, $"--image: {error}");
        }
        PinnedImage pinned;
        try
        {
            using var client = registry.CreateClient(context.Parse, context.Console);
            pinned = await ImagePuller.PinAsync(new RegistryImageSource(client, reference), ct).ConfigureAwait(false);
        }
        catch (RegistryException e)
        {
            throw new CliFailure(RegistryOptions.ExitCode(e), $"--image {shown}: {e.Message}");
        }
        catch (RegistryCredentialsException e)
        {
            throw new CliFailure(ExitCodes.Invalid, e.Message);
        }
        var result = $"{reference.Registry}/{reference.Repository}@{pinned.Digest}";
        context.Console.Err.WriteLine($"Resolved {shown} to {result}");
        foreach (var (platform, digest) in pinned.PlatformDigests)
        {
            context.Console.Err.WriteLine($"  {platform} {digest}");
        }
        return (result, pinned.PlatformDigests.Count == 0 ? null : pinned.PlatformDigests.ToDictionary(p => p.Key, p => p.Value.ToString()));
    }

    /// <summary>Reads and validates the manifest; prints every problem and fails with exit 1 when it is invalid.</summary>
    private static (string Path, string Text, AppManifest Manifest) LoadManifest(RemoteContext context, string file)
    {
        var path = context.FullPath(file);
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > ManifestLoader.MaxFileBytes)
            {
                throw new CliFailure(ExitCodes.Invalid, $"{file}: the file is {info.Length} bytes; a manifest may be at most {ManifestLoader.MaxFileBytes}");
            }
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliFailure(ExitCodes.IoError, $"{file}: cannot read: {(e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message)}");
        }
        var loaded = ManifestLoader.Load(bytes);
        if (!loaded.IsValid)
        {
            foreach (var diagnostic in loaded.Diagnostics)
            {
                context.Console.Err.WriteLine(diagnostic.Format(file));
            }
            var count = loaded.Diagnostics.Count;
            throw new CliFailure(ExitCodes.Invalid, $"{file}: {count} problem{(count == 1 ? "" : "s")}; nothing was deployed");
        }
        // Valid means valid UTF-8, so this decoding is exact.
        return (file, Encoding.UTF8.GetString(bytes), loaded.Manifest!);
    }

    // ---- releases ----------------------------------------------------------------------------------

    private static Command Releases(CliConsole console)
    {
        var releases = new Command("releases", """
            Releases of an env: list them (the default, newest first) or show one.

            Examples:
              trc releases --env prod
              trc releases show 3 --env prod
            """);
        ListReleases(releases, console);
        var list = new Command("list", """
            List the env's releases, newest first.

            Example:
              trc releases list --app shop --env prod
            """);
        ListReleases(list, console);
        releases.Subcommands.Add(list);

        var number = new Argument<int>("N") { Description = "The release number." };
        var show = new Command("show", """
            Show one release: image, digest, resources and whether it is deployed
            (--json adds the normalized manifest).

            Example:
              trc releases show 3 --env prod
            """);
        show.Arguments.Add(number);
        var target = Target.Add(show, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(show, console, target, async (context, ct) =>
        {
            var r = await context.Client.GetReleaseAsync(context.Org, context.App, context.Env, context.Value(number), ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(r);
                return ExitCodes.Ok;
            }
            TextTable.WriteFields(console.Out,
                ("release", TextTable.Number(r.Number)),
                ("deployed", TextTable.YesNo(r.Deployed)),
                ("image", r.Image),
                ("digest", r.ImageDigest),
                ("memory", TextTable.Bytes(r.MemoryBytes)),
                ("instances", TextTable.Number(r.Instances)),
                ("secrets", $"version {r.SecretsVersion}"),
                ("created", TextTable.Time(r.CreatedAt)),
                ("created by", r.CreatedBy?.ToString()));
            return ExitCodes.Ok;
        });
        releases.Subcommands.Add(show);
        return releases;
    }

    private static void ListReleases(Command command, CliConsole console)
    {
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var releases = await context.Client.ListReleasesAsync(context.Org, context.App, context.Env, ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(releases);
                return ExitCodes.Ok;
            }
            var table = new TextTable("RELEASE", "STATUS", "DIGEST", "MEMORY", "INSTANCES", "SECRETS", "CREATED", "IMAGE");
            foreach (var r in releases.Items)
            {
                table.Add(TextTable.Number(r.Number), r.Deployed ? "deployed" : "-", ShortDigest(r.ImageDigest), TextTable.Bytes(r.MemoryBytes),
                    TextTable.Number(r.Instances), TextTable.Number(r.SecretsVersion), TextTable.Time(r.CreatedAt), r.Image);
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
    }

    private static string ShortDigest(string digest)
    {
        var colon = digest.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && digest.Length > colon + 13 ? digest[..(colon + 13)] : digest;
    }
}
