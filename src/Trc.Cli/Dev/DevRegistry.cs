using System.Buffers;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Trc.Oci.Images;
using Trc.Core.Toml;
using Trc.Oci.Layout;

namespace Trc.Cli.Dev;

/// <summary>
/// A read-only registry for <c>trc dev</c>: the pull side of the OCI Distribution Spec v1.1 on
/// Kestrel, serving the OCI image layouts under one directory. Repository <c>NAME</c> is the layout
/// at <c>IMAGES/NAME</c> (<c>team/app</c> is <c>IMAGES/team/app</c>), as <c>trc image from-dir
/// --out oci:IMAGES/NAME:TAG</c> and <c>skopeo copy ... oci:IMAGES/NAME:TAG</c> write it; its tags
/// are the <c>org.opencontainers.image.ref.name</c> annotations of the layout's <c>index.json</c>.
/// </summary>
/// <remarks>
/// <para>
/// Served, for GET and HEAD: <c>/v2/</c>, <c>/v2/NAME/manifests/TAG-OR-DIGEST</c>,
/// <c>/v2/NAME/blobs/DIGEST</c> (streamed from disk, single byte ranges) and
/// <c>/v2/NAME/tags/list</c>. Every other method is 405 <c>UNSUPPORTED</c>; errors are the spec's
/// JSON (<c>{"errors":[{"code":...,"message":...}]}</c>) with its codes.
/// </para>
/// <para>
/// Invariant: nothing outside the images directory is ever read. Names are checked against the
/// distribution grammar on the raw request target (so <c>..</c>, empty components and encoded
/// slashes never reach the file system), and every file is opened only after its real path (all
/// symlinks resolved) was found under the images directory's real path; the opened descriptor's own
/// path is checked again, and only regular files are read. Files are opened non-blocking, so a FIFO
/// in a layout cannot hang a request.
/// </para>
/// <para>
/// Manifests (small) are hashed on every request and refused when their bytes do not match their
/// digest; layers are not re-hashed (clients check them as they pull).
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed partial class DevRegistry : IAsyncDisposable
{
    /// <summary>The longest repository name accepted, as the distribution reference grammar counts it.</summary>
    public const int MaxNameLength = 255;

    private const string ApiVersionHeader = "Docker-Distribution-API-Version";
    private const string ContentDigestHeader = "Docker-Content-Digest";
    private const string JsonType = "application/json";
    private const string BlobType = "application/octet-stream";
    private const int MaxLayoutMarkerBytes = 64 * 1024;
    private const int CopyBufferBytes = 128 * 1024;

    private readonly WebApplication _app;
    private readonly ILogger _logger;
    private readonly string _rootPrefix;
    private int _stopped;

    private DevRegistry(WebApplication app, ILogger logger, string root)
    {
        _app = app;
        _logger = logger;
        ImagesDirectory = root;
        _rootPrefix = root.EndsWith('/') ? root : root + "/";
    }

    /// <summary>The registry as image references name it, <c>host:port</c> (<c>127.0.0.1:7081</c>, <c>[::1]:7081</c>), with the bound port.</summary>
    public string Host { get; private set; } = "";

    /// <summary>The base address of the API, <c>http://host:port/</c>.</summary>
    public Uri BaseAddress => new($"http://{Host}/");

    /// <summary>The images directory served, as its real path (symlinks resolved).</summary>
    public string ImagesDirectory { get; }

    /// <summary>Starts serving <paramref name="imagesDirectory"/> on <paramref name="listen"/>.</summary>
    /// <param name="imagesDirectory">The directory of layouts (created when missing).</param>
    /// <param name="listen">Where to listen, and only there; port 0 picks a free port (see <see cref="Host"/>).</param>
    /// <param name="ct">Stops the start.</param>
    /// <returns>The running registry; dispose it to stop.</returns>
    public static Task<DevRegistry> StartAsync(string imagesDirectory, IPEndPoint listen, CancellationToken ct) =>
        StartAsync(imagesDirectory, listen, null, ct);

    /// <summary>Starts serving <paramref name="imagesDirectory"/> on <paramref name="listen"/>, logging to <paramref name="logger"/>.</summary>
    /// <param name="imagesDirectory">The directory of layouts (created when missing).</param>
    /// <param name="listen">Where to listen, and only there; port 0 picks a free port (see <see cref="Host"/>).</param>
    /// <param name="logger">Where start, refusals and failures are logged (never request headers), or null for nowhere.</param>
    /// <param name="ct">Stops the start.</param>
    /// <returns>The running registry; dispose it to stop.</returns>
    /// <exception cref="IOException">The images directory cannot be resolved, or the address cannot be bound.</exception>
    public static async Task<DevRegistry> StartAsync(string imagesDirectory, IPEndPoint listen, ILogger? logger, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagesDirectory);
        ArgumentNullException.ThrowIfNull(listen);
        var full = Path.GetFullPath(imagesDirectory);
        Directory.CreateDirectory(full);
        var root = LinuxFiles.RealPath(full, out var errno)
            ?? throw new IOException($"cannot resolve the images directory {full}: {Marshal.GetPInvokeErrorMessage(errno)}");

        // The empty builder: no configuration sources (ASPNETCORE_URLS cannot add a listener), no
        // logging providers (Kestrel logs nothing of requests), no developer exception page.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = root });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(listen);
        });
        var app = builder.Build();
        var registry = new DevRegistry(app, logger ?? NullLogger.Instance, root);
        app.Run(registry.HandleAsync);
        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        registry.Host = new IPEndPoint(listen.Address, new Uri(address).Port).ToString();
        LogServing(registry._logger, root, registry.Host);
        return registry;
    }

    /// <summary>Stops listening; requests under way get until <paramref name="ct"/> is cancelled to finish.</summary>
    /// <param name="ct">Ends the grace period.</param>
    /// <returns>A task that completes when the server stopped.</returns>
    public async Task StopAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            await _app.StopAsync(ct).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await StopAsync(grace.Token).ConfigureAwait(false);
        }
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    // ---- requests ------------------------------------------------------------------------------

    private async Task HandleAsync(HttpContext http)
    {
        http.Response.Headers[ApiVersionHeader] = "registry/2.0";
        var rawTarget = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? http.Request.Path.Value ?? "";
        try
        {
            var method = http.Request.Method;
            var head = HttpMethods.IsHead(method);
            var route = Route.Parse(rawTarget);
            if (!head && !HttpMethods.IsGet(method))
            {
                http.Response.Headers.Allow = "GET, HEAD";
                var name = route.Components is { } c && ValidateName(c) is null ? string.Join('/', c) : "NAME";
                await ErrorAsync(http, false, 405, "UNSUPPORTED",
                    $"this registry is read-only: {method} is not served; images get in as OCI layouts: write an OCI layout to {ImagesDirectory}/{name} "
                    + $"(trc image from-dir ROOTFS --out oci:{ImagesDirectory}/{name}:TAG, or skopeo copy IMAGE oci:{ImagesDirectory}/{name}:TAG)").ConfigureAwait(false);
                return;
            }
            var answer = route.Kind switch
            {
                RouteKind.Base => Answer.Json(200, "{}"u8.ToArray()),
                RouteKind.Unknown => Answer.Error(404, "UNSUPPORTED",
                    "no such endpoint: this registry serves GET and HEAD of /v2/, /v2/NAME/manifests/REFERENCE, /v2/NAME/blobs/DIGEST and /v2/NAME/tags/list"),
                _ => ValidateName(route.Components!) is { } nameError ? Answer.Error(400, "NAME_INVALID", nameError) : null,
            };
            if (answer is null)
            {
                var name = string.Join('/', route.Components!);
                answer = route.Kind switch
                {
                    RouteKind.Manifest => Manifest(name, route.Reference!),
                    RouteKind.Blob => Blob(name, route.Reference!, http.Request.Headers.Range.ToString()),
                    _ => Tags(name, http.Request.Query["n"].ToString(), http.Request.Query["last"].ToString()),
                };
            }
            await SendAsync(http, answer, head).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException && http.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception e)
        {
            LogFailed(_logger, http.Request.Method, Shorten(rawTarget), e);
            if (http.Response.HasStarted)
            {
                http.Abort();
            }
            else
            {
                http.Response.Clear();
                http.Response.Headers[ApiVersionHeader] = "registry/2.0";
                await ErrorAsync(http, HttpMethods.IsHead(http.Request.Method), 500, "UNKNOWN", $"internal error ({e.GetType().Name}); see the trc dev log").ConfigureAwait(false);
            }
        }
    }

    private Answer Manifest(string name, string reference)
    {
        Digest? digest = null;
        if (reference.Contains(':', StringComparison.Ordinal))
        {
            if (!Digest.TryParse(reference, out digest, out var digestError))
            {
                return Answer.Error(400, "DIGEST_INVALID", digestError);
            }
        }
        else if (!ImageReference.IsValidTag(reference, out var tagError))
        {
            return Answer.Error(400, "TAG_INVALID", tagError);
        }
        if (CheckLayout(name) is { } missing)
        {
            return missing;
        }
        if (digest is not null)
        {
            return ManifestBlob(name, digest, null, null);
        }

        var index = ReadIndex(name, out var indexError);
        if (index is null)
        {
            return Answer.Error(404, "MANIFEST_UNKNOWN", $"{name}:{reference}: {indexError}");
        }
        var found = index.Manifests.Where(e => e.Annotations?.GetValueOrDefault(OciLayout.RefNameAnnotation) == reference).ToList();
        if (found.Count != 1)
        {
            return Answer.Error(404, "MANIFEST_UNKNOWN", found.Count == 0
                ? $"{name}: no image is tagged \"{reference}\" (tags: {(TagsOf(index) is { Count: > 0 } t ? string.Join(", ", t) : "none")})"
                : $"{name}: {found.Count} entries of {LayoutPath(name)}/index.json are tagged \"{reference}\"; a tag must name one image");
        }
        var entry = found[0];
        if (!MediaTypes.IsManifest(entry.MediaType) && !MediaTypes.IsIndex(entry.MediaType))
        {
            return Answer.Error(404, "MANIFEST_UNKNOWN", $"{name}:{reference}: names a {entry.MediaType}, not an image manifest or index");
        }
        return ManifestBlob(name, entry.Digest, entry.Size, entry.MediaType);
    }

    // The blob behind a manifest reference: small, so it is read whole, hashed and parsed every time.
    private Answer ManifestBlob(string name, Digest digest, long? expectedSize, string? expectedMediaType)
    {
        var what = $"{name}@{digest}";
        var opened = OpenConfined(BlobRelative(name, digest));
        if (opened.File is not { } file)
        {
            return Answer.Error(404, "MANIFEST_UNKNOWN", $"{what}: {opened.Problem}");
        }
        byte[] bytes;
        using (file)
        {
            if (file.Length > ManifestParser.MaxManifestBytes)
            {
                return Answer.Error(404, "MANIFEST_UNKNOWN", $"{what}: the blob is {file.Length} bytes, more than a manifest may be ({ManifestParser.MaxManifestBytes}); it is not a manifest");
            }
            bytes = file.ReadAll();
        }
        var actual = Digest.Compute(digest.Algorithm, bytes);
        if (actual != digest)
        {
            return Answer.Error(404, "MANIFEST_UNKNOWN", $"{what}: {file.Path} holds {bytes.Length} bytes hashing to {actual}; the layout is corrupt");
        }
        if (expectedSize is { } size && size != bytes.Length)
        {
            return Answer.Error(404, "MANIFEST_UNKNOWN", $"{what}: the blob is {bytes.Length} bytes, but index.json says {size}; the layout is corrupt");
        }
        ManifestDocument document;
        try
        {
            document = ManifestParser.Parse(bytes, expectedMediaType);
        }
        catch (OciFormatException e)
        {
            return Answer.Error(404, "MANIFEST_UNKNOWN", $"{what}: not an image manifest or index: {e.Message}");
        }
        var mediaType = document.MediaType ?? expectedMediaType ?? (document is ImageIndex ? MediaTypes.OciIndex : MediaTypes.OciManifest);
        return new Answer(200, mediaType, bytes, null) { Digest = digest };
    }

    private Answer Blob(string name, string reference, string range)
    {
        if (!Digest.TryParse(reference, out var digest, out var digestError))
        {
            return Answer.Error(400, "DIGEST_INVALID", digestError);
        }
        if (CheckLayout(name) is { } missing)
        {
            return missing;
        }
        var opened = OpenConfined(BlobRelative(name, digest));
        if (opened.File is not { } file)
        {
            return Answer.Error(404, "BLOB_UNKNOWN", $"{name}@{digest}: {opened.Problem}");
        }
        switch (ByteRange.Parse(range, file.Length))
        {
            case { Satisfiable: false }:
                file.Dispose();
                return Answer.Error(416, "SIZE_INVALID", $"{name}@{digest}: the range \"{Shorten(range)}\" is outside the blob's {file.Length} bytes")
                    with { ContentRange = $"bytes */{file.Length}" };
            case { } r:
                return new Answer(206, BlobType, null, file) { Digest = digest, Offset = r.Start, Count = r.Length, ContentRange = $"bytes {r.Start}-{r.Start + r.Length - 1}/{file.Length}" };
            default:
                return new Answer(200, BlobType, null, file) { Digest = digest, Count = file.Length };
        }
    }

    private Answer Tags(string name, string n, string last)
    {
        if (CheckLayout(name) is { } missing)
        {
            return missing;
        }
        var index = ReadIndex(name, out var indexError);
        if (index is null)
        {
            return Answer.Error(404, "NAME_UNKNOWN", $"{name}: {indexError}");
        }
        IEnumerable<string> tags = TagsOf(index);
        if (last.Length > 0)
        {
            tags = tags.Where(t => string.CompareOrdinal(t, last) > 0);
        }
        var list = tags.ToList();
        string? link = null;
        if (int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var page) && page < list.Count)
        {
            list = list[..page];
            if (page > 0)
            {
                link = $"</v2/{name}/tags/list?n={page}&last={Uri.EscapeDataString(list[^1])}>; rel=\"next\"";
            }
        }
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("name", name);
            json.WriteStartArray("tags");
            foreach (var tag in list)
            {
                json.WriteStringValue(tag);
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Answer.Json(200, buffer.WrittenSpan.ToArray()) with { Link = link };
    }

    // ---- the layouts on disk ---------------------------------------------------------------------

    private string LayoutPath(string name) => Path.Join(ImagesDirectory, name);

    private static string BlobRelative(string name, Digest digest) => $"{name}/blobs/{digest.Algorithm}/{digest.Hex}";

    /// <summary>Null when <paramref name="name"/> is a layout; else the NAME_UNKNOWN answer saying why not.</summary>
    private Answer? CheckLayout(string name)
    {
        var opened = OpenConfined($"{name}/oci-layout");
        if (opened.File is not { } file)
        {
            return Answer.Error(404, "NAME_UNKNOWN", opened.Missing
                ? $"{name}: no image layout at {LayoutPath(name)} (no oci-layout file); write one with trc image from-dir ROOTFS --out oci:{LayoutPath(name)}:TAG"
                : $"{name}: {opened.Problem}");
        }
        using (file)
        {
            if (file.Length > MaxLayoutMarkerBytes)
            {
                return Answer.Error(404, "NAME_UNKNOWN", $"{name}: {file.Path} is {file.Length} bytes, not the layout marker");
            }
            try
            {
                using var marker = JsonDocument.Parse(file.ReadAll());
                if (marker.RootElement.ValueKind != JsonValueKind.Object
                    || !marker.RootElement.TryGetProperty("imageLayoutVersion", out var version)
                    || version.ValueKind != JsonValueKind.String || version.GetString() != "1.0.0")
                {
                    return Answer.Error(404, "NAME_UNKNOWN", $"{name}: {file.Path}: imageLayoutVersion must be \"1.0.0\"");
                }
            }
            catch (JsonException e)
            {
                return Answer.Error(404, "NAME_UNKNOWN", $"{name}: {file.Path} is not the layout marker JSON: {e.Message}");
            }
        }
        return null;
    }

    private ImageIndex? ReadIndex(string name, out string? problem)
    {
        var opened = OpenConfined($"{name}/index.json");
        if (opened.File is not { } file)
        {
            problem = opened.Missing ? $"{LayoutPath(name)} has no index.json" : opened.Problem;
            return null;
        }
        using (file)
        {
            if (file.Length > ManifestParser.MaxManifestBytes)
            {
                problem = $"{file.Path} is {file.Length} bytes, more than an index may be ({ManifestParser.MaxManifestBytes})";
                return null;
            }
            try
            {
                if (ManifestParser.Parse(file.ReadAll(), MediaTypes.OciIndex) is ImageIndex index)
                {
                    problem = null;
                    return index;
                }
                problem = $"{file.Path} is an image manifest, not an image index";
            }
            catch (OciFormatException e)
            {
                problem = $"{file.Path} is not a valid OCI image index: {e.Message}";
            }
        }
        return null;
    }

    private static List<string> TagsOf(ImageIndex index) =>
        [.. index.Manifests
            .Select(e => e.Annotations?.GetValueOrDefault(OciLayout.RefNameAnnotation))
            .OfType<string>()
            .Where(t => ImageReference.IsValidTag(t, out _))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)];

    /// <summary>
    /// Opens <paramref name="relative"/> (built from validated names only) for reading, if its real
    /// path is under the images directory and it is a regular file.
    /// </summary>
    private Opened OpenConfined(string relative)
    {
        var path = Path.Join(ImagesDirectory, relative);
        var real = LinuxFiles.RealPath(path, out var errno);
        if (real is null)
        {
            return errno is LinuxFiles.ENoent or LinuxFiles.ENotDir
                ? new Opened(null, true, $"{path} does not exist")
                : new Opened(null, false, $"{path} cannot be resolved: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        if (!real.StartsWith(_rootPrefix, StringComparison.Ordinal))
        {
            LogOutside(_logger, path, real);
            return new Opened(null, false, $"{path} resolves to {real}, outside the images directory; refused");
        }
        var handle = LinuxFiles.OpenReadOnly(real, out errno);
        if (handle is null)
        {
            return errno == LinuxFiles.ENoent
                ? new Opened(null, true, $"{path} does not exist")
                : new Opened(null, false, $"{path} cannot be opened: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        // Closes the gap between realpath and open: the file actually opened must be the one checked.
        if (LinuxFiles.OpenedPath(handle) is { } opened && opened != real)
        {
            handle.Dispose();
            LogOutside(_logger, path, opened);
            return new Opened(null, false, $"{path} changed while it was opened; refused");
        }
        var (isRegular, length) = LinuxFiles.Describe(handle);
        if (!isRegular)
        {
            handle.Dispose();
            return new Opened(null, false, $"{path} is not a regular file");
        }
        return new Opened(new LayoutFile(handle, length, path), false, null);
    }

    private readonly record struct Opened(LayoutFile? File, bool Missing, string? Problem);

    private sealed class LayoutFile(SafeFileHandle handle, long length, string path) : IDisposable
    {
        public SafeFileHandle Handle { get; } = handle;

        public long Length { get; } = length;

        public string Path { get; } = path;

        /// <summary>The whole file; callers checked <see cref="Length"/> against their cap first.</summary>
        public byte[] ReadAll()
        {
            var bytes = new byte[Length];
            var done = 0;
            while (done < bytes.Length)
            {
                var n = RandomAccess.Read(Handle, bytes.AsSpan(done), done);
                if (n == 0)
                {
                    throw new IOException($"{Path} shrank while it was read");
                }
                done += n;
            }
            return bytes;
        }

        public void Dispose() => Handle.Dispose();
    }

    // ---- names and routes -------------------------------------------------------------------------

    /// <summary>
    /// Null when the components form a repository name of the distribution grammar:
    /// <c>[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*</c> joined by <c>/</c>, at most
    /// <see cref="MaxNameLength"/> characters; else why not. The same grammar as
    /// <see cref="ImageReference"/>'s, applied per (already percent-decoded) path segment, so a
    /// decoded '/' is refused rather than read as a separator.
    /// </summary>
    internal static string? ValidateName(IReadOnlyList<string> components)
    {
        var length = components.Count - 1 + components.Sum(c => c.Length);
        var shown = Shorten(string.Join('/', components));
        if (components.Count == 0 || length == 0)
        {
            return "repository name is empty";
        }
        if (length > MaxNameLength)
        {
            return $"repository name \"{shown}\" is {length} characters, more than {MaxNameLength}";
        }
        foreach (var component in components)
        {
            if (!ImageReference.IsValidPathComponent(component, out var why))
            {
                return $"repository name \"{shown}\": component \"{Shorten(component)}\" {why} "
                    + "(components are lowercase letters and digits, joined inside by '.', '_', '__' or dashes; components are joined by '/')";
            }
        }
        return null;
    }

    private enum RouteKind
    {
        Base,
        Manifest,
        Blob,
        Tags,
        Unknown,
    }

    /// <summary>A request target taken apart: read from the raw target, so the server's own path normalisation cannot hide a '..'.</summary>
    private readonly record struct Route(RouteKind Kind, IReadOnlyList<string>? Components, string? Reference)
    {
        public static Route Parse(string rawTarget)
        {
            var query = rawTarget.IndexOf('?', StringComparison.Ordinal);
            var path = query < 0 ? rawTarget : rawTarget[..query];
            if (path is "/v2" or "/v2/")
            {
                return new Route(RouteKind.Base, null, null);
            }
            if (!path.StartsWith("/v2/", StringComparison.Ordinal))
            {
                return new Route(RouteKind.Unknown, null, null);
            }
            // Each segment is decoded on its own: "%2f" becomes a '/' inside a component, which the grammar refuses.
            var segments = path[4..].Split('/').Select(Unescape).ToList();
            var count = segments.Count;
            if (count >= 3 && segments[^2] == "tags" && segments[^1] == "list")
            {
                return new Route(RouteKind.Tags, segments[..^2], null);
            }
            if (count >= 3 && segments[^2] is "manifests" or "blobs")
            {
                return new Route(segments[^2] == "manifests" ? RouteKind.Manifest : RouteKind.Blob, segments[..^2], segments[^1]);
            }
            return new Route(RouteKind.Unknown, null, null);
        }

        private static string Unescape(string segment)
        {
            try
            {
                return segment.Contains('%', StringComparison.Ordinal) ? Uri.UnescapeDataString(segment) : segment;
            }
            catch (UriFormatException)
            {
                return segment; // left with its '%', which no name, tag or digest admits
            }
        }
    }

    /// <summary>A single <c>bytes=</c> range; null (the whole blob) for no header, several ranges, or one that does not parse (RFC 9110 14.2).</summary>
    private readonly record struct ByteRange(long Start, long Length, bool Satisfiable)
    {
        public static ByteRange? Parse(string header, long size)
        {
            if (!header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) || header.Contains(',', StringComparison.Ordinal))
            {
                return null;
            }
            var spec = header[6..].Trim();
            var dash = spec.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0)
            {
                return null;
            }
            var first = spec[..dash];
            var last = spec[(dash + 1)..];
            if (first.Length == 0)
            {
                // bytes=-N: the last N bytes.
                if (!long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var suffix))
                {
                    return null;
                }
                return suffix == 0 || size == 0 ? new ByteRange(0, 0, false) : new ByteRange(size - Math.Min(suffix, size), Math.Min(suffix, size), true);
            }
            if (!long.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var start))
            {
                return null;
            }
            var end = size - 1;
            if (last.Length > 0)
            {
                if (!long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out end) || end < start)
                {
                    return null;
                }
            }
            return start >= size ? new ByteRange(0, 0, false) : new ByteRange(start, Math.Min(end, size - 1) - start + 1, true);
        }
    }

    // ---- answers ---------------------------------------------------------------------------------

    /// <summary>A response: small bodies in memory, blobs as an open file (disposed once sent).</summary>
    private sealed record Answer(int Status, string ContentType, byte[]? Body, LayoutFile? File)
    {
        public Digest? Digest { get; init; }

        public long Offset { get; init; }

        public long Count { get; init; }

        public string? ContentRange { get; init; }

        public string? Link { get; init; }

        public static Answer Json(int status, byte[] body) => new(status, JsonType, body, null);

        public static Answer Error(int status, string code, string message) => Json(status, ErrorBody(code, message));
    }

    private static async Task SendAsync(HttpContext http, Answer answer, bool head)
    {
        using var file = answer.File;
        var response = http.Response;
        response.StatusCode = answer.Status;
        response.ContentType = answer.ContentType;
        response.ContentLength = answer.Body?.Length ?? answer.Count;
        if (answer.Digest is { } digest)
        {
            response.Headers[ContentDigestHeader] = digest.ToString();
        }
        if (file is not null || answer.ContentRange is not null)
        {
            response.Headers.AcceptRanges = "bytes";
        }
        if (answer.ContentRange is { } contentRange)
        {
            response.Headers.ContentRange = contentRange;
        }
        if (answer.Link is { } link)
        {
            response.Headers.Link = link;
        }
        if (head)
        {
            return;
        }
        var ct = http.RequestAborted;
        if (answer.Body is { } body)
        {
            await response.Body.WriteAsync(body, ct).ConfigureAwait(false);
            return;
        }
        if (file is null)
        {
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            var offset = answer.Offset;
            var remaining = answer.Count;
            while (remaining > 0)
            {
                var n = await RandomAccess.ReadAsync(file.Handle, buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), offset, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    // Fewer bytes than the Content-Length sent: the client must see a broken response, not a short one.
                    throw new IOException($"{file.Path} shrank while it was sent");
                }
                await response.Body.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                offset += n;
                remaining -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static Task ErrorAsync(HttpContext http, bool head, int status, string code, string message) =>
        SendAsync(http, Answer.Error(status, code, message), head);

    private static byte[] ErrorBody(string code, string message)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("errors");
            json.WriteStartObject();
            json.WriteString("code", code);
            json.WriteString("message", message);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    // Messages quote the request: a hostile megabyte of it, or a control character, must not end up
    // whole or raw in an answer or a log line.
    private static string Shorten(string text) => TomlKeys.Printable(text, 160);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Dev registry serving the layouts under {Directory} on {Host}")]
    private static partial void LogServing(ILogger logger, string directory, string host);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Dev registry refused {Path}: it resolves to {RealPath}, outside the images directory")]
    private static partial void LogOutside(ILogger logger, string path, string realPath);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Dev registry failed to answer {Method} {Target}")]
    private static partial void LogFailed(ILogger logger, string method, string target, Exception exception);
}
