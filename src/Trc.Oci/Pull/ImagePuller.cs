using Trc.Oci.Images;
using Trc.Oci.Layers;
using Trc.Oci.Registry;
using Trc.Oci.Store;

namespace Trc.Oci.Pull;

/// <summary>
/// Resolves an image reference to one platform's manifest and brings its config and layers into a
/// <see cref="BlobStore"/>; then applies the layers onto a directory, checking each layer's
/// uncompressed digest against the config's <c>diff_ids</c>.
/// </summary>
public sealed class ImagePuller
{
    private readonly BlobStore _store;
    private readonly int _parallel;

    /// <summary>Creates a puller.</summary>
    /// <param name="store">Where blobs go (and are found when already there).</param>
    /// <param name="parallelDownloads">Blobs fetched at once (default 4).</param>
    public ImagePuller(BlobStore store, int parallelDownloads = 4)
    {
        _store = store;
        _parallel = Math.Max(1, parallelDownloads);
    }

    /// <summary>The store blobs go to.</summary>
    public BlobStore Store => _store;

    /// <summary>
    /// Fetches the manifest the reference names and, when it is an index, the manifest for
    /// <paramref name="platform"/>. Both are kept in the store.
    /// </summary>
    /// <param name="source">The image.</param>
    /// <param name="platform">The platform wanted (the host's when null).</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <returns>The digests: the reference's, the platform manifest's, and every platform's of an index.</returns>
    /// <exception cref="RegistryException">The registry failed or the manifest is wrong.</exception>
    /// <exception cref="PlatformNotFoundException">The index has no image for the platform.</exception>
    public async Task<ResolvedImage> ResolveAsync(ImageSource source, ImagePlatform? platform, CancellationToken cancellationToken)
    {
        var (resolved, documents) = await ResolveCoreAsync(source, platform, cancellationToken).ConfigureAwait(false);
        foreach (var document in documents)
        {
            _store.Put(document.Bytes, document.Digest.Algorithm);
        }
        return resolved;
    }

    /// <summary>
    /// Resolves a reference once to the digest it names now, keeping nothing: what <c>trc deploy</c>
    /// does to pin a tag. For an index, every platform's manifest digest is listed (no platform is
    /// chosen: the nodes that run the image may differ from this machine).
    /// </summary>
    /// <param name="source">The image.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <returns>The digest and, for an index, the per-platform digests.</returns>
    public static async Task<PinnedImage> PinAsync(ImageSource source, CancellationToken cancellationToken)
    {
        var root = await source.GetRootAsync(cancellationToken).ConfigureAwait(false);
        var perPlatform = root.Document is ImageIndex index ? PerPlatform(index) : new Dictionary<string, Digest>(StringComparer.Ordinal);
        if (root.Document is ImageIndex)
        {
            if (perPlatform.Count == 0)
            {
                throw new RegistryException(RegistryErrorKind.BadResponse, $"{source.Name}: the index lists no image for any platform");
            }
        }
        return new PinnedImage(root.Digest, root.MediaType, perPlatform);
    }

    /// <summary>Each platform an index offers, with its manifest digest (the first entry wins a duplicate).</summary>
    private static Dictionary<string, Digest> PerPlatform(ImageIndex index)
    {
        var perPlatform = new Dictionary<string, Digest>(StringComparer.Ordinal);
        foreach (var entry in PlatformMatcher.Candidates(index))
        {
            perPlatform.TryAdd(entry.Platform!.ToString(), entry.Digest);
        }
        return perPlatform;
    }

    private static async Task<(ResolvedImage Resolved, List<FetchedManifest> Documents)> ResolveCoreAsync(ImageSource source, ImagePlatform? platform, CancellationToken cancellationToken)
    {
        platform ??= ImagePlatform.Host;
        var root = await source.GetRootAsync(cancellationToken).ConfigureAwait(false);
        switch (root.Document)
        {
            case ImageManifest manifest:
                return (new ResolvedImage(root.Digest, root.MediaType, root.Digest, manifest, null,
                    new Dictionary<string, Digest>(StringComparer.Ordinal)), [root]);
            case ImageIndex index:
                var selected = PlatformMatcher.Select(index, platform.Os, platform.Architecture, platform.Variant);
                if (!MediaTypes.IsManifest(selected.MediaType))
                {
                    throw new RegistryException(RegistryErrorKind.BadResponse,
                        $"{source.Name}: the index entry for {selected.Platform} is a {selected.MediaType}, not an image manifest (nested indexes are not supported)");
                }
                var fetched = await source.GetManifestAsync(selected, cancellationToken).ConfigureAwait(false);
                if (fetched.Document is not ImageManifest platformManifest)
                {
                    throw new RegistryException(RegistryErrorKind.BadResponse, $"{source.Name}: {selected.Digest} is an index, not the image manifest its index entry says");
                }
                return (new ResolvedImage(root.Digest, root.MediaType, fetched.Digest, platformManifest, selected.Platform!.ToString(), PerPlatform(index)), [root, fetched]);
            default:
                throw new RegistryException(RegistryErrorKind.BadResponse, $"{source.Name}: neither a manifest nor an index");
        }
    }

    /// <summary>Resolves the image and brings its config and layers into the store.</summary>
    /// <param name="source">The image.</param>
    /// <param name="platform">The platform wanted (the host's when null).</param>
    /// <param name="progress">Told what is being fetched, or null.</param>
    /// <param name="cancellationToken">Stops the work; nothing partial is stored.</param>
    /// <returns>The pulled image.</returns>
    public async Task<PulledImage> PullAsync(ImageSource source, ImagePlatform? platform, IProgress<PullProgress>? progress, CancellationToken cancellationToken)
    {
        platform ??= ImagePlatform.Host;
        var resolved = await ResolveAsync(source, platform, cancellationToken).ConfigureAwait(false);
        progress?.Report(new PullProgress(PullPhase.Resolved, null, 0, resolved.Manifest.Layers.Sum(l => l.Size)) { Resolved = resolved });

        var manifest = resolved.Manifest;
        await source.FetchBlobAsync(manifest.Config, _store, null, cancellationToken).ConfigureAwait(false);
        _store.Touch(manifest.Config.Digest);
        ImageConfig config;
        try
        {
            config = ManifestParser.ParseConfig(_store.ReadAll(manifest.Config.Digest, ManifestParser.MaxConfigBytes));
        }
        catch (OciFormatException e)
        {
            throw new RegistryException(RegistryErrorKind.BadResponse, $"{source.Name}: config {manifest.Config.Digest}: {e.Message}", e);
        }
        CheckConfig(source.Name, resolved, config, platform);

        foreach (var layer in manifest.Layers)
        {
            if (!MediaTypes.IsLayer(layer.MediaType))
            {
                throw new RegistryException(RegistryErrorKind.BadResponse, $"{source.Name}: layer {layer.Digest} has media type {layer.MediaType}, which is not a layer trc can apply");
            }
        }

        // Fetched in parallel, largest first so the longest download starts at once.
        using var gate = new SemaphoreSlim(_parallel);
        var downloads = manifest.Layers
            .DistinctBy(l => l.Digest)
            .OrderByDescending(l => l.Size)
            .Select(async layer =>
            {
                await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    var cached = _store.Contains(layer.Digest, layer.Size);
                    if (cached)
                    {
                        _store.Touch(layer.Digest);
                    }
                    progress?.Report(new PullProgress(cached ? PullPhase.LayerCached : PullPhase.LayerStarted, layer.Digest, 0, layer.Size));
                    var reporter = progress is null ? null : new InlineProgress<long>(bytes => progress.Report(new PullProgress(PullPhase.LayerBytes, layer.Digest, bytes, layer.Size)));
                    await source.FetchBlobAsync(layer, _store, reporter, cancellationToken).ConfigureAwait(false);
                    if (!cached)
                    {
                        progress?.Report(new PullProgress(PullPhase.LayerDone, layer.Digest, layer.Size, layer.Size));
                    }
                }
                finally
                {
                    gate.Release();
                }
            })
            .ToList();
        await Task.WhenAll(downloads).ConfigureAwait(false);
        return new PulledImage(resolved, manifest.Config.Digest, config);
    }

    /// <summary>
    /// Applies the pulled image's layers, in order, onto <paramref name="directory"/>. Each layer's
    /// uncompressed bytes must hash to its <c>diff_id</c>.
    /// </summary>
    /// <param name="image">An image pulled into this puller's store.</param>
    /// <param name="directory">The root to fill (created if missing; normally empty).</param>
    /// <param name="options">Limits and permissions for the applier, or null for defaults.</param>
    /// <param name="cancellationToken">Stops the work between entries.</param>
    /// <returns>What the applier skipped and recorded.</returns>
    /// <exception cref="LayerException">A layer is hostile, malformed, or not the one the config names.</exception>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public LayerApplyResult Unpack(PulledImage image, string directory, LayerApplierOptions? options, CancellationToken cancellationToken)
    {
        var layers = image.Resolved.Manifest.Layers;
        var diffIds = image.Config.RootFs.DiffIds;
        var applier = new LayerApplier(directory, options);
        for (var i = 0; i < layers.Count; i++)
        {
            using var file = _store.OpenRead(layers[i].Digest);
            using var checkedLayer = new DiffIdCheckingStream(file, diffIds[i]);
            applier.Apply(checkedLayer, cancellationToken);
            checkedLayer.DrainAndVerify(layers[i].Digest);
        }
        return applier.Result;
    }

    private static void CheckConfig(string name, ResolvedImage resolved, ImageConfig config, ImagePlatform platform)
    {
        if (config.RootFs.DiffIds.Count != resolved.Manifest.Layers.Count)
        {
            throw new RegistryException(RegistryErrorKind.BadResponse,
                $"{name}: the config lists {config.RootFs.DiffIds.Count} diff_ids for {resolved.Manifest.Layers.Count} layers");
        }
        if (config.Os != platform.Os || !ImagePlatform.SameArchitecture(config.Architecture, platform.Architecture))
        {
            throw new RegistryException(RegistryErrorKind.BadResponse,
                $"{name}: the image is for {config.Os}/{config.Architecture}{(config.Variant is null ? "" : "/" + config.Variant)}, not {platform}");
        }
    }
}

/// <summary>A platform to pull for: <c>os/architecture[/variant]</c>.</summary>
/// <param name="Os">The operating system (<c>linux</c>).</param>
/// <param name="Architecture">The architecture (<c>amd64</c>, <c>arm64</c>).</param>
/// <param name="Variant">The variant (<c>v8</c>), or null.</param>
public sealed record ImagePlatform(string Os, string Architecture, string? Variant = null)
{
    /// <summary>Linux on this machine's architecture.</summary>
    public static ImagePlatform Host { get; } = FromHost();

    /// <summary>Parses <c>os/architecture[/variant]</c>.</summary>
    /// <param name="text">The platform text.</param>
    /// <returns>The platform.</returns>
    /// <exception cref="FormatException">The text is not of that form.</exception>
    public static ImagePlatform Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || p.Length > 32 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
        {
            throw new FormatException($"platform \"{Digest.Shorten(text)}\": expected os/architecture[/variant], such as linux/amd64 or linux/arm64/v8");
        }
        return new ImagePlatform(parts[0], parts[1], parts.Length == 3 ? parts[2] : null);
    }

    internal static bool SameArchitecture(string a, string b) =>
        PlatformMatcher.NormalizeArchitecture(a) == PlatformMatcher.NormalizeArchitecture(b);

    private static ImagePlatform FromHost()
    {
        var (architecture, variant) = PlatformMatcher.Host();
        return new ImagePlatform("linux", architecture, variant);
    }

    /// <summary>The platform as <c>os/architecture[/variant]</c>.</summary>
    /// <returns>The text form.</returns>
    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}

/// <summary>An image reference resolved for one platform.</summary>
/// <param name="RootDigest">The digest the reference names (an index's, or the manifest's).</param>
/// <param name="RootMediaType">The media type of that document.</param>
/// <param name="ManifestDigest">The digest of the platform's image manifest (equal to <paramref name="RootDigest"/> without an index).</param>
/// <param name="Manifest">The platform's image manifest.</param>
/// <param name="Platform">The index entry's platform, or null without an index.</param>
/// <param name="PlatformDigests">For an index, the manifest digest of every platform it offers; empty otherwise.</param>
public sealed record ResolvedImage(
    Digest RootDigest,
    string RootMediaType,
    Digest ManifestDigest,
    ImageManifest Manifest,
    string? Platform,
    IReadOnlyDictionary<string, Digest> PlatformDigests);

/// <summary>What a reference named when it was pinned.</summary>
/// <param name="Digest">The digest of the manifest or index the reference names.</param>
/// <param name="MediaType">Its media type.</param>
/// <param name="PlatformDigests">For an index, each platform's manifest digest; empty for a single manifest.</param>
public sealed record PinnedImage(Digest Digest, string MediaType, IReadOnlyDictionary<string, Digest> PlatformDigests);

/// <summary>An image whose config and layers are in the store.</summary>
/// <param name="Resolved">What the reference resolved to.</param>
/// <param name="ConfigDigest">The config blob's digest.</param>
/// <param name="Config">The parsed config.</param>
public sealed record PulledImage(ResolvedImage Resolved, Digest ConfigDigest, ImageConfig Config);

/// <summary>Steps of a pull, for progress output.</summary>
public enum PullPhase
{
    /// <summary>The manifest is known; <see cref="PullProgress.Total"/> is the bytes of all layers.</summary>
    Resolved,

    /// <summary>A layer is already in the store.</summary>
    LayerCached,

    /// <summary>A layer download started.</summary>
    LayerStarted,

    /// <summary>Bytes of a layer arrived.</summary>
    LayerBytes,

    /// <summary>A layer is stored and verified.</summary>
    LayerDone,
}

/// <summary>One step of a pull.</summary>
/// <param name="Phase">The step.</param>
/// <param name="Blob">The layer, or null.</param>
/// <param name="Bytes">Bytes so far.</param>
/// <param name="Total">Bytes expected.</param>
public sealed record PullProgress(PullPhase Phase, Digest? Blob, long Bytes, long Total)
{
    /// <summary>Set on <see cref="PullPhase.Resolved"/>: what the reference resolved to.</summary>
    public ResolvedImage? Resolved { get; init; }
}

/// <summary>Reports on the calling thread, in order (unlike <see cref="Progress{T}"/>, which posts).</summary>
/// <typeparam name="T">The value reported.</typeparam>
/// <param name="report">Called with each value.</param>
public sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => report(value);
}

/// <summary>
/// Passes a compressed layer through to the applier while hashing the uncompressed bytes the applier
/// reads, so the <c>diff_id</c> is checked without a second pass.
/// </summary>
internal sealed class DiffIdCheckingStream : Stream
{
    private readonly Stream _compressed;
    private readonly Digest _diffId;
    private readonly DigestVerifier _verifier;
    private Stream? _tar;

    public DiffIdCheckingStream(Stream compressed, Digest diffId)
    {
        _compressed = compressed;
        _diffId = diffId;
        _verifier = diffId.CreateVerifier();
    }

    private Stream Tar => _tar ??= LayerStreams.OpenTar(_compressed);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _verifier.BytesVerified;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = Tar.Read(buffer);
        _verifier.Append(buffer[..n]);
        return n;
    }

    /// <summary>Reads what the applier left (the tar's end padding) and checks the digest.</summary>
    public void DrainAndVerify(Digest layer)
    {
        var buffer = new byte[64 * 1024];
        while (Read(buffer) > 0)
        {
        }
        if (!_verifier.Verify(out var actual))
        {
            throw new LayerException($"layer {layer}: its uncompressed bytes hash to {actual}, but the image config's diff_id is {_diffId}");
        }
    }

    public override void Flush() { }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _tar?.Dispose();
            _verifier.Dispose();
        }
        base.Dispose(disposing);
    }
}
