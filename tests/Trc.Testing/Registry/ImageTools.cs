using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Trc.Testing.Registry;

/// <summary>The image configuration umoci writes; null fields are left as umoci makes them.</summary>
public sealed record ImageSpec
{
    public IReadOnlyList<string>? Entrypoint { get; init; }

    public IReadOnlyList<string>? Cmd { get; init; }

    /// <summary><c>KEY=value</c> entries.</summary>
    public IReadOnlyList<string>? Env { get; init; }

    public string? WorkingDir { get; init; }

    public string? User { get; init; }

    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    public string Os { get; init; } = "linux";

    public string Architecture { get; init; } = "amd64";

    /// <summary>Written only into an index's platform (umoci 0.4.7 has no --variant).</summary>
    public string? Variant { get; init; }
}

/// <summary>
/// A user and password the fixtures know (for skopeo, Basic, the token server). Not named
/// RegistryCredentials: Trc.Oci.Registry has one, and tests import both namespaces.
/// </summary>
public sealed record FixtureCredentials(string User, string Password)
{
    public override string ToString() => $"{User}:***"; // never the password, should this reach a test log
}

/// <summary>An image manifest in an OCI layout, with the digests a test needs to ask a registry for it.</summary>
public sealed record LayoutImage(
    string LayoutDir,
    string Tag,
    string ManifestDigest,
    long ManifestSize,
    string ConfigDigest,
    IReadOnlyList<string> LayerDigests,
    ImageSpec Spec)
{
    /// <summary>The skopeo/containers-image reference, <c>oci:DIR:TAG</c>.</summary>
    public string OciReference => $"oci:{LayoutDir}:{Tag}";

    public byte[] ReadBlob(string digest) => ImageTools.ReadLayoutBlob(LayoutDir, digest);

    public byte[] ManifestBytes => ReadBlob(ManifestDigest);
}

/// <summary>An OCI image index in a layout, and the platform images it lists.</summary>
public sealed record LayoutIndex(string LayoutDir, string Tag, string IndexDigest, long IndexSize, IReadOnlyList<LayoutImage> Images)
{
    public string OciReference => $"oci:{LayoutDir}:{Tag}";

    public byte[] IndexBytes => ImageTools.ReadLayoutBlob(LayoutDir, IndexDigest);
}

/// <summary>
/// Process wrappers for the real image tools: umoci builds OCI layouts (as root, with
/// unpack → write → repack: umoci 0.4.7's <c>insert</c> writes a layer tar without its end-of-archive
/// blocks, which strict readers refuse), skopeo pushes them to a registry.
/// </summary>
public static class ImageTools
{
    public const string OciManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndexMediaType = "application/vnd.oci.image.index.v1+json";
    public const string DockerManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestListMediaType = "application/vnd.docker.distribution.manifest.list.v2+json";
    private const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    // A policy of our own: /etc/containers/policy.json may be missing or strict on another machine.
    // One file for every test process, replaced whole by a rename, so a reader never sees half of it.
    private static readonly Lazy<string> PolicyFile = new(() =>
    {
        var path = Path.Combine(Path.GetTempPath(), "trc-skopeo-policy.json");
        var scratch = path + "." + Guid.NewGuid().ToString("N");
        File.WriteAllText(scratch, """{"default":[{"type":"insecureAcceptAnything"}]}""");
        File.Move(scratch, path, overwrite: true);
        return path;
    });

    /// <summary>Runs a program; returns its stdout, or throws <see cref="ExternalToolException"/> with its stderr.</summary>
    public static Task<string> RunAsync(string file, IEnumerable<string> arguments, CancellationToken ct, string? workingDirectory = null) =>
        HostTool.RunCheckedAsync(file, arguments, ct, workingDirectory);

    /// <summary>A one-layer image of these files (paths relative to the root, '/' separated).</summary>
    public static Task<LayoutImage> CreateUmociLayoutAsync(
        string layoutDir, string tag, IReadOnlyDictionary<string, byte[]> files, ImageSpec? spec, CancellationToken ct) =>
        CreateUmociLayoutAsync(layoutDir, tag, [files], spec, ct);

    /// <summary>A one-layer image of a directory's contents (copied as they are: modes, links).</summary>
    public static async Task<LayoutImage> CreateUmociLayoutAsync(
        string layoutDir, string tag, string sourceDirectory, ImageSpec? spec, CancellationToken ct) =>
        await BuildAsync(layoutDir, tag, spec ?? new ImageSpec(), async rootfs =>
        {
            await RunAsync("cp", ["-a", "--", Path.GetFullPath(sourceDirectory) + "/.", rootfs], ct);
            return true;
        }, 1, ct);

    /// <summary>An image with one layer per dictionary, in order; a later layer's file replaces an earlier one.</summary>
    public static Task<LayoutImage> CreateUmociLayoutAsync(
        string layoutDir, string tag, IReadOnlyList<IReadOnlyDictionary<string, byte[]>> layers, ImageSpec? spec, CancellationToken ct)
    {
        var next = 0;
        return BuildAsync(layoutDir, tag, spec ?? new ImageSpec(), rootfs =>
        {
            foreach (var (relative, bytes) in layers[next++])
            {
                var path = Path.Combine(rootfs, relative.TrimStart('/'));
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllBytes(path, bytes);
            }
            return Task.FromResult(true);
        }, layers.Count, ct);
    }

    private static async Task<LayoutImage> BuildAsync(
        string layoutDir, string tag, ImageSpec spec, Func<string, Task<bool>> fillLayer, int layerCount, CancellationToken ct)
    {
        layoutDir = Path.GetFullPath(layoutDir);
        var image = $"{layoutDir}:{tag}";
        if (!File.Exists(Path.Combine(layoutDir, "oci-layout")))
        {
            await RunAsync("umoci", ["init", "--layout", layoutDir], ct);
        }
        await RunAsync("umoci", ["new", "--image", image], ct);
        // Unprivileged runs need --rootless (no chown, no device nodes); as root it would only lose owners.
        string[] rootless = Environment.IsPrivilegedProcess ? [] : ["--rootless"];
        for (var i = 0; i < layerCount; i++)
        {
            var bundle = Path.Combine(Path.GetTempPath(), "trc-umoci-bundle-" + Guid.NewGuid().ToString("N"));
            try
            {
                await RunAsync("umoci", ["unpack", .. rootless, "--image", image, bundle], ct);
                await fillLayer(Path.Combine(bundle, "rootfs"));
                await RunAsync("umoci", ["repack", .. rootless, "--no-history", "--image", image, bundle], ct);
            }
            finally
            {
                DeleteDirectory(bundle);
            }
        }
        var config = new List<string> { "config", "--no-history", "--image", image, "--os", spec.Os, "--architecture", spec.Architecture };
        // A list is given one flag per element; an empty list has to be cleared instead.
        if (spec.Entrypoint is { } entrypoint)
        {
            config.AddRange(entrypoint.Count == 0 ? ["--clear", "config.entrypoint"] : entrypoint.SelectMany(e => new[] { "--config.entrypoint", e }));
        }
        if (spec.Cmd is { } cmd)
        {
            config.AddRange(cmd.Count == 0 ? ["--clear", "config.cmd"] : cmd.SelectMany(c => new[] { "--config.cmd", c }));
        }
        config.AddRange((spec.Env ?? []).SelectMany(e => new[] { "--config.env", e }));
        config.AddRange((spec.Labels ?? new Dictionary<string, string>()).SelectMany(l => new[] { "--config.label", $"{l.Key}={l.Value}" }));
        if (spec.WorkingDir is { } workingDir)
        {
            config.AddRange(["--config.workingdir", workingDir]);
        }
        if (spec.User is { } user)
        {
            config.AddRange(["--config.user", user]);
        }
        await RunAsync("umoci", config, ct);
        // Drop the blobs of the intermediate manifests and configs, so the layout holds only what its tags reach.
        await RunAsync("umoci", ["gc", "--layout", layoutDir], ct);
        return ReadLayoutImage(layoutDir, tag, spec);
    }

    /// <summary>The image a tag of a layout names (its manifest, config and layers).</summary>
    public static LayoutImage ReadLayoutImage(string layoutDir, string tag, ImageSpec? spec = null)
    {
        var descriptor = FindTag(layoutDir, tag) ?? throw new InvalidOperationException($"No tag {tag} in {layoutDir}/index.json.");
        var digest = (string)descriptor["digest"]!;
        var manifest = JsonNode.Parse(ReadLayoutBlob(layoutDir, digest))!;
        return new LayoutImage(
            layoutDir,
            tag,
            digest,
            (long)descriptor["size"]!,
            (string)manifest["config"]!["digest"]!,
            [.. manifest["layers"]!.AsArray().Select(l => (string)l!["digest"]!)],
            spec ?? new ImageSpec());
    }

    /// <summary>
    /// A layout whose <paramref name="tag"/> is an OCI image index of one small, distinct image per
    /// platform. umoci cannot write an index, so this one is written here; each platform image is also
    /// tagged <c>TAG-OS-ARCH[-VARIANT]</c>.
    /// </summary>
    public static async Task<LayoutIndex> CreateMultiArchIndexAsync(
        string layoutDir, string tag, IReadOnlyList<ImageSpec> platforms, CancellationToken ct)
    {
        layoutDir = Path.GetFullPath(layoutDir);
        var images = new List<LayoutImage>();
        foreach (var p in platforms)
        {
            var platformTag = string.Join('-', new[] { tag, p.Os, p.Architecture, p.Variant }.OfType<string>());
            var files = new Dictionary<string, byte[]>
            {
                ["etc/platform"] = Encoding.UTF8.GetBytes($"{p.Os}/{p.Architecture}{(p.Variant is null ? "" : "/" + p.Variant)}\n"),
            };
            images.Add(await CreateUmociLayoutAsync(layoutDir, platformTag, files, p, ct));
        }
        var manifests = new JsonArray();
        foreach (var image in images)
        {
            var platform = new JsonObject { ["architecture"] = image.Spec.Architecture, ["os"] = image.Spec.Os };
            if (image.Spec.Variant is { } variant)
            {
                platform["variant"] = variant;
            }
            manifests.Add(new JsonObject
            {
                ["mediaType"] = OciManifestMediaType,
                ["digest"] = image.ManifestDigest,
                ["size"] = image.ManifestSize,
                ["platform"] = platform,
            });
        }
        var index = new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = OciIndexMediaType, ["manifests"] = manifests };
        var bytes = Encoding.UTF8.GetBytes(index.ToJsonString());
        var digest = WriteLayoutBlob(layoutDir, bytes);
        Tag(layoutDir, tag, OciIndexMediaType, digest, bytes.Length);
        return new LayoutIndex(layoutDir, tag, digest, bytes.Length, images);
    }

    /// <summary>The two platforms most tests want: linux/amd64 and linux/arm64/v8.</summary>
    public static IReadOnlyList<ImageSpec> AmdAndArm { get; } =
    [
        new ImageSpec { Architecture = "amd64" },
        new ImageSpec { Architecture = "arm64", Variant = "v8" },
    ];

    /// <summary>
    /// <c>skopeo copy</c> between references such as <c>oci:DIR:TAG</c> and <c>docker://127.0.0.1:PORT/repo:tag</c>,
    /// over plain HTTP, with a permissive policy of our own. Null credentials mean anonymous
    /// (<c>--*-no-creds</c>: no auth file is consulted). <paramref name="format"/> is oci, v2s2 or null (as the source).
    /// </summary>
    public static Task<string> SkopeoCopyAsync(
        string source,
        string destination,
        FixtureCredentials? sourceCredentials,
        FixtureCredentials? destinationCredentials,
        bool all,
        CancellationToken ct,
        string? format = null)
    {
        var args = new List<string> { "--policy", PolicyFile.Value, "copy", "--retry-times", "0" };
        if (source.StartsWith("docker://", StringComparison.Ordinal))
        {
            args.Add("--src-tls-verify=false");
            args.AddRange(sourceCredentials is null ? ["--src-no-creds"] : ["--src-creds", $"{sourceCredentials.User}:{sourceCredentials.Password}"]);
        }
        if (destination.StartsWith("docker://", StringComparison.Ordinal))
        {
            args.Add("--dest-tls-verify=false");
            args.AddRange(destinationCredentials is null ? ["--dest-no-creds"] : ["--dest-creds", $"{destinationCredentials.User}:{destinationCredentials.Password}"]);
        }
        if (all)
        {
            args.Add("--all");
        }
        if (format is not null)
        {
            args.AddRange(["--format", format]);
        }
        args.AddRange([source, destination]);
        return RunAsync("skopeo", args, ct);
    }

    /// <summary><c>sha256:hex</c> of the bytes.</summary>
    public static string Sha256Digest(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static byte[] ReadLayoutBlob(string layoutDir, string digest)
    {
        var colon = digest.IndexOf(':');
        return File.ReadAllBytes(Path.Combine(layoutDir, "blobs", digest[..colon], digest[(colon + 1)..]));
    }

    /// <summary>Stores bytes as a blob of the layout; returns their digest.</summary>
    public static string WriteLayoutBlob(string layoutDir, byte[] bytes)
    {
        var digest = Sha256Digest(bytes);
        var dir = Path.Combine(layoutDir, "blobs", "sha256");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, digest["sha256:".Length..]), bytes);
        return digest;
    }

    /// <summary>Points a tag of the layout's index.json at a descriptor, replacing any earlier one.</summary>
    public static void Tag(string layoutDir, string tag, string mediaType, string digest, long size)
    {
        var path = Path.Combine(layoutDir, "index.json");
        var index = JsonNode.Parse(File.ReadAllText(path))!;
        var manifests = index["manifests"]?.AsArray() ?? [];
        foreach (var old in manifests.Where(m => (string?)m?["annotations"]?[RefNameAnnotation] == tag).ToList())
        {
            manifests.Remove(old);
        }
        manifests.Add(new JsonObject
        {
            ["mediaType"] = mediaType,
            ["digest"] = digest,
            ["size"] = size,
            ["annotations"] = new JsonObject { [RefNameAnnotation] = tag },
        });
        index["manifests"] = manifests;
        File.WriteAllText(path, index.ToJsonString());
    }

    private static JsonNode? FindTag(string layoutDir, string tag) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(layoutDir, "index.json")))!["manifests"]!.AsArray()
            .LastOrDefault(m => (string?)m?["annotations"]?[RefNameAnnotation] == tag);

    public static void DeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
            // best effort: a temp dir left behind is not a test failure
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
