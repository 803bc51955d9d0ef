using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Trc.Cli.Dev;
using Trc.Oci.Build;
using Trc.Oci.Images;
using Trc.Oci.Layout;
using Trc.Oci.Pull;
using Trc.Oci.Registry;
using Trc.Oci.Store;
using Trc.Testing;
using Trc.Testing.Registry;

namespace Trc.Cli.Tests.Dev;

/// <summary>A fact that needs skopeo: skipped, with the reason, only where it is not installed.</summary>
public sealed class SkopeoFactAttribute : FactAttribute
{
    public SkopeoFactAttribute()
    {
        if (HostTool.Find("skopeo") is null)
        {
            Skip = "skopeo is not installed (scripts/test-packages.txt lists it); the peer-client test needs it";
        }
    }
}

/// <summary>An images directory with two layouts made by trc's own builder, served by one registry for the class.</summary>
[SupportedOSPlatform("linux")]
public sealed class DevRegistryWorld : IAsyncLifetime
{
    public DirectoryInfo Root { get; } = Directory.CreateTempSubdirectory("trc-dev-registry-");

    public string Images => Path.Combine(Root.FullName, "images");

    internal DevRegistry Registry { get; private set; } = null!;

    public BuiltImage App { get; private set; } = null!;

    public BuiltImage AppV2 { get; private set; } = null!;

    public BuiltImage Hello { get; private set; } = null!;

    public static readonly byte[] Data = RandomNumberGenerator.GetBytes(300 * 1024);

    public async Task InitializeAsync()
    {
        App = Build("team/app", "v1", "one");
        AppV2 = Build("team/app", "v2", "two");
        Build("team/app", "latest", "one");
        Hello = Build("hello", "v1", "hello");
        Registry = await DevRegistry.StartAsync(Images, new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
    }

    /// <summary>A one-layer image of a small tree (a text file and random data) tagged into IMAGES/NAME.</summary>
    public BuiltImage Build(string name, string tag, string text) => BuildAt(Layout(name), tag, text);

    /// <summary>The same, into any layout directory (inside the images directory or not).</summary>
    public BuiltImage BuildAt(string layout, string tag, string text)
    {
        var source = Path.Combine(Root.FullName, "src", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(source, "etc"));
        Directory.CreateDirectory(Path.Combine(source, "bin"));
        File.WriteAllText(Path.Combine(source, "etc/motd"), text + "\n");
        File.WriteAllBytes(Path.Combine(source, "bin/data.bin"), Data);
        return DirectoryImageBuilder.Build(source, layout, tag, new DirectoryImageOptions
        {
            Cmd = ["/bin/sh"],
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
        });
    }

    public string Layout(string name) => Path.Combine(Images, name);

    public string BlobPath(string name, Digest digest) => Path.Combine(Layout(name), "blobs", digest.Algorithm, digest.Hex);

    public async Task DisposeAsync()
    {
        await Registry.DisposeAsync();
        Root.Delete(recursive: true);
    }
}

/// <summary>Keeps every log entry, to check what is (and is not) in them.</summary>
public sealed class ListLogger : ILogger
{
    private readonly List<(LogLevel Level, int Id, string Text)> _entries = [];

    public IReadOnlyList<(LogLevel Level, int Id, string Text)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
        {
            _entries.Add((logLevel, eventId.Id, formatter(state, exception) + (exception is null ? "" : "\n" + exception)));
        }
    }
}

/// <summary>What a registry answered, read off the wire.</summary>
public sealed record RegistryAnswer(int Status, WireHead Head, byte[] Body)
{
    public string Text => Encoding.UTF8.GetString(Body);

    public string? Header(string name) => Head.Get(name);

    /// <summary>The code of the first error in a distribution error body.</summary>
    public string ErrorCode => Error().Code;

    public string ErrorMessage => Error().Message;

    private (string Code, string Message) Error()
    {
        Assert.Equal("application/json", Header("Content-Type"));
        using var document = JsonDocument.Parse(Body);
        var error = document.RootElement.GetProperty("errors")[0];
        return (error.GetProperty("code").GetString()!, error.GetProperty("message").GetString()!);
    }

    public override string ToString() => $"{Head.StartLine}\n{string.Join("\n", Head.Headers.Select(h => $"{h.Key}: {h.Value}"))}\n\n{Text}";
}

[SupportedOSPlatform("linux")]
public sealed class DevRegistryTests(DevRegistryWorld world) : IClassFixture<DevRegistryWorld>, IDisposable
{
    private const string Zeros = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false });

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("trc-dev-registry-test-");
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(60));

    public void Dispose()
    {
        _cts.Dispose();
        _dir.Delete(recursive: true);
    }

    private string P(string relative) => Path.Combine(_dir.FullName, relative);

    private DevRegistry Registry => world.Registry;

    private CancellationToken Ct => _cts.Token;

    /// <summary>
    /// One request on its own connection, written byte for byte: HttpClient would normalise the
    /// hostile targets ('..', '%2f') these tests must send as they are.
    /// </summary>
    private async Task<RegistryAnswer> RawAsync(string method, string target, string extraHeaders = "", DevRegistry? registry = null)
    {
        registry ??= Registry;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPEndPoint.Parse(registry.Host), Ct);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes($"{method} {target} HTTP/1.1\r\nHost: {registry.Host}\r\nConnection: close\r\n{extraHeaders}\r\n"), Ct);
        var reader = new WireReader(stream);
        var head = await reader.ReadHeadAsync(Ct) ?? throw new IOException($"no answer to {method} {target}");
        var status = int.Parse(head.StartLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        return new RegistryAnswer(status, head, await reader.ReadResponseBodyAsync(head, method, status, Ct));
    }

    private Task<RegistryAnswer> GetAsync(string target, string extraHeaders = "") => RawAsync("GET", target, extraHeaders);

    private static void AssertError(RegistryAnswer answer, int status, string code)
    {
        Assert.True(answer.Status == status && answer.ErrorCode == code, $"expected {status} {code}, got:\n{answer}");
        Assert.Equal("registry/2.0", answer.Header("Docker-Distribution-API-Version"));
        Assert.DoesNotContain("   at ", answer.Text, StringComparison.Ordinal); // no stack trace
    }

    // ---- the happy path ----------------------------------------------------------------------------

    [Fact]
    public async Task It_listens_where_told_and_names_itself_as_image_references_do()
    {
        Assert.StartsWith("127.0.0.1:", Registry.Host, StringComparison.Ordinal);
        Assert.NotEqual(0, IPEndPoint.Parse(Registry.Host).Port);
        Assert.Equal(new Uri($"http://{Registry.Host}/"), Registry.BaseAddress);

        foreach (var target in new[] { "/v2/", "/v2" })
        {
            var answer = await GetAsync(target);
            Assert.Equal(200, answer.Status);
            Assert.Equal("{}", answer.Text);
            Assert.Equal("registry/2.0", answer.Header("Docker-Distribution-API-Version"));
            Assert.Equal("application/json", answer.Header("Content-Type"));
            Assert.Equal("2", answer.Header("Content-Length"));
        }
    }

    [Fact]
    public async Task The_repository_client_pulls_by_tag_and_by_digest_and_the_layer_bytes_check_out()
    {
        using var client = new RegistryClient(new RegistryClientOptions { MaxAttempts = 1 });
        var byTag = ImageReference.Parse($"{Registry.Host}/team/app:v1");
        var store = new BlobStore(P("store-tag"));
        var pulled = await new ImagePuller(store).PullAsync(new RegistryImageSource(client, byTag), null, null, Ct);

        Assert.Equal(world.App.ManifestDigest, pulled.Resolved.ManifestDigest);
        Assert.Equal(world.App.ConfigDigest, pulled.ConfigDigest);
        Assert.Equal(["/bin/sh"], pulled.Config.Config!.Cmd!);
        var layer = Assert.Single(pulled.Resolved.Manifest.Layers);
        Assert.Equal(world.App.LayerDigest, layer.Digest);
        Assert.True(store.Contains(world.App.LayerDigest, world.App.LayerSize));
        Assert.Equal(File.ReadAllBytes(world.BlobPath("team/app", world.App.LayerDigest)), File.ReadAllBytes(store.PathOf(world.App.LayerDigest)));

        var byDigest = ImageReference.Parse($"{Registry.Host}/team/app@{world.AppV2.ManifestDigest}");
        var pinned = await new ImagePuller(new BlobStore(P("store-digest"))).PullAsync(new RegistryImageSource(client, byDigest), null, null, Ct);
        Assert.Equal(world.AppV2.ManifestDigest, pinned.Resolved.ManifestDigest);
        Assert.Equal(world.AppV2.LayerDigest, Assert.Single(pinned.Resolved.Manifest.Layers).Digest);

        var manifest = await client.GetManifestAsync(ImageReference.Parse($"{Registry.Host}/hello:v1"), null, Ct);
        Assert.Equal(world.Hello.ManifestDigest, manifest.Digest);
        Assert.Equal(MediaTypes.OciManifest, manifest.MediaType);
    }

    [SkopeoFact]
    public async Task Skopeo_inspects_and_copies_what_it_serves_with_the_same_digest()
    {
        var inspect = await HostTool.RunCheckedAsync("skopeo",
            ["inspect", "--tls-verify=false", "--no-creds", $"docker://{Registry.Host}/team/app:v1"], Ct);
        using (var json = JsonDocument.Parse(inspect))
        {
            Assert.Equal(world.App.ManifestDigest.ToString(), json.RootElement.GetProperty("Digest").GetString());
            Assert.Equal(world.App.LayerDigest.ToString(), json.RootElement.GetProperty("Layers")[0].GetString());
            Assert.Contains("latest", json.RootElement.GetProperty("RepoTags").EnumerateArray().Select(t => t.GetString()));
        }

        var raw = await HostTool.RunCheckedAsync("skopeo",
            ["inspect", "--raw", "--tls-verify=false", "--no-creds", $"docker://{Registry.Host}/team/app@{world.AppV2.ManifestDigest}"], Ct);
        Assert.Equal(world.AppV2.ManifestDigest, Digest.Compute(Digest.Sha256, Encoding.UTF8.GetBytes(raw)));

        await ImageTools.SkopeoCopyAsync($"docker://{Registry.Host}/team/app:v1", $"oci:{P("copy")}:v1", null, null, all: false, Ct);
        var copied = OciLayout.Open(P("copy"));
        Assert.Equal(world.App.ManifestDigest, copied.Find("v1").Digest);
        Assert.Equal(
            File.ReadAllBytes(world.BlobPath("team/app", world.App.LayerDigest)),
            File.ReadAllBytes(copied.Blobs.PathOf(world.App.LayerDigest)));
    }

    [Fact]
    public async Task A_manifest_answer_carries_its_media_type_length_and_digest()
    {
        var answer = await GetAsync("/v2/team/app/manifests/v1");
        Assert.Equal(200, answer.Status);
        Assert.Equal(MediaTypes.OciManifest, answer.Header("Content-Type"));
        Assert.Equal(world.App.ManifestSize.ToString(System.Globalization.CultureInfo.InvariantCulture), answer.Header("Content-Length"));
        Assert.Equal(world.App.ManifestDigest.ToString(), answer.Header("Docker-Content-Digest"));
        Assert.Equal(world.App.ManifestDigest, Digest.Compute(Digest.Sha256, answer.Body));

        var byDigest = await GetAsync($"/v2/team/app/manifests/{world.App.ManifestDigest}");
        Assert.Equal(200, byDigest.Status);
        Assert.Equal(answer.Body, byDigest.Body);
        Assert.Equal(MediaTypes.OciManifest, byDigest.Header("Content-Type"));
    }

    [Fact]
    public async Task A_blob_answer_is_the_file_as_octets_with_its_digest()
    {
        var answer = await GetAsync($"/v2/team/app/blobs/{world.App.LayerDigest}");
        Assert.Equal(200, answer.Status);
        Assert.Equal("application/octet-stream", answer.Header("Content-Type"));
        Assert.Equal(world.App.LayerSize.ToString(System.Globalization.CultureInfo.InvariantCulture), answer.Header("Content-Length"));
        Assert.Equal(world.App.LayerDigest.ToString(), answer.Header("Docker-Content-Digest"));
        Assert.Equal(world.App.LayerDigest, Digest.Compute(Digest.Sha256, answer.Body));
    }

    [Fact]
    public async Task Blob_ranges_are_served_and_one_past_the_end_is_416()
    {
        var layer = File.ReadAllBytes(world.BlobPath("team/app", world.App.LayerDigest));
        var digest = world.App.LayerDigest;

        var middle = await GetAsync($"/v2/team/app/blobs/{digest}", "Range: bytes=10-109\r\n");
        Assert.Equal(206, middle.Status);
        Assert.Equal(layer[10..110], middle.Body);
        Assert.Equal($"bytes 10-109/{layer.Length}", middle.Header("Content-Range"));
        Assert.Equal("100", middle.Header("Content-Length"));

        var tail = await GetAsync($"/v2/team/app/blobs/{digest}", "Range: bytes=-7\r\n");
        Assert.Equal(206, tail.Status);
        Assert.Equal(layer[^7..], tail.Body);

        var open = await GetAsync($"/v2/team/app/blobs/{digest}", $"Range: bytes={layer.Length - 3}-\r\n");
        Assert.Equal(layer[^3..], open.Body);

        var beyond = await GetAsync($"/v2/team/app/blobs/{digest}", $"Range: bytes={layer.Length}-\r\n");
        AssertError(beyond, 416, "SIZE_INVALID");
        Assert.Equal($"bytes */{layer.Length}", beyond.Header("Content-Range"));

        // Several ranges, or one that does not parse: the whole blob (RFC 9110 lets a server ignore Range).
        var several = await GetAsync($"/v2/team/app/blobs/{digest}", "Range: bytes=0-1,5-6\r\n");
        Assert.Equal(200, several.Status);
        Assert.Equal(layer, several.Body);
        Assert.Equal(layer, (await GetAsync($"/v2/team/app/blobs/{digest}", "Range: bytes=x-y\r\n")).Body);
    }

    [Fact]
    public async Task Tags_list_is_sorted_and_pages_with_n_and_last()
    {
        var answer = await GetAsync("/v2/team/app/tags/list");
        Assert.Equal(200, answer.Status);
        Assert.Equal("application/json", answer.Header("Content-Type"));
        Assert.Equal("""{"name":"team/app","tags":["latest","v1","v2"]}""", answer.Text);

        var first = await GetAsync("/v2/team/app/tags/list?n=2");
        Assert.Equal("""{"name":"team/app","tags":["latest","v1"]}""", first.Text);
        Assert.Equal("</v2/team/app/tags/list?n=2&last=v1>; rel=\"next\"", first.Header("Link"));
        var second = await GetAsync("/v2/team/app/tags/list?n=2&last=v1");
        Assert.Equal("""{"name":"team/app","tags":["v2"]}""", second.Text);
        Assert.Null(second.Header("Link"));

        Assert.Equal("""{"name":"hello","tags":["v1"]}""", (await GetAsync("/v2/hello/tags/list")).Text);
    }

    [Fact]
    public async Task A_new_layout_is_served_without_a_restart()
    {
        world.Build("fresh/one", "v1", "fresh");
        var answer = await GetAsync("/v2/fresh/one/tags/list");
        Assert.Equal(200, answer.Status);
        Assert.Equal("""{"name":"fresh/one","tags":["v1"]}""", answer.Text);
    }

    [Fact]
    public async Task Head_answers_carry_the_same_headers_as_get_and_no_body()
    {
        string[] targets =
        [
            "/v2/",
            "/v2/team/app/manifests/v1",
            $"/v2/team/app/manifests/{world.App.ManifestDigest}",
            $"/v2/team/app/blobs/{world.App.LayerDigest}",
            $"/v2/team/app/blobs/{world.App.ConfigDigest}",
            "/v2/team/app/tags/list",
            "/v2/team/app/manifests/nope",
            "/v2/team/app/blobs/sha256:short",
            "/v2/Bad/manifests/v1",
        ];
        foreach (var target in targets)
        {
            var get = await RawAsync("GET", target);
            var head = await RawAsync("HEAD", target);
            Assert.Equal(get.Status, head.Status);
            Assert.Empty(head.Body);
            Assert.Equal(get.Body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), head.Header("Content-Length"));
            foreach (var name in new[] { "Content-Type", "Content-Length", "Docker-Content-Digest", "Docker-Distribution-API-Version" })
            {
                Assert.True(get.Header(name) == head.Header(name), $"{target}: {name} is \"{get.Header(name)}\" for GET, \"{head.Header(name)}\" for HEAD");
            }
        }
    }

    // ---- writes ------------------------------------------------------------------------------------

    [Theory]
    [InlineData("PUT", "/v2/team/app/manifests/v3")]
    [InlineData("POST", "/v2/team/app/blobs/uploads/")]
    [InlineData("PATCH", "/v2/team/app/blobs/uploads/0f6b0d8a")]
    [InlineData("DELETE", "/v2/team/app/manifests/v1")]
    [InlineData("DELETE", "/v2/team/app/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("PUT", "/v2/../../etc/passwd")]
    [InlineData("OPTIONS", "/v2/")]
    public async Task Every_write_is_405_and_says_how_images_get_in(string method, string target)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(Registry.BaseAddress, target));
        if (method is "PUT" or "PATCH")
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"schemaVersion":2}"""));
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.OciManifest);
        }
        using var response = await Http.SendAsync(request, Ct);
        var answer = await RawAsync(method, target);
        foreach (var (status, body, allow) in new[]
        {
            ((int)response.StatusCode, await response.Content.ReadAsStringAsync(Ct), string.Join(", ", response.Content.Headers.Allow)),
            (answer.Status, answer.Text, answer.Header("Allow")),
        })
        {
            Assert.Equal(405, status);
            Assert.Equal("GET, HEAD", allow);
            using var json = JsonDocument.Parse(body);
            var error = json.RootElement.GetProperty("errors")[0];
            Assert.Equal("UNSUPPORTED", error.GetProperty("code").GetString());
            var message = error.GetProperty("message").GetString()!;
            Assert.StartsWith("this registry is read-only", message, StringComparison.Ordinal);
            Assert.Contains($"write an OCI layout to {Registry.ImagesDirectory}/", message, StringComparison.Ordinal);
            Assert.Contains("trc image from-dir", message, StringComparison.Ordinal);
            Assert.Contains($"--out oci:{Registry.ImagesDirectory}/", message, StringComparison.Ordinal);
        }
        Assert.False(Directory.Exists(Path.Combine(world.Images, "team/app/v3")));
        Assert.Equal(200, (await GetAsync("/v2/team/app/manifests/v1")).Status);
    }

    [Fact]
    public async Task A_write_names_the_layout_path_of_its_repository()
    {
        var answer = await RawAsync("PUT", "/v2/team/app/manifests/v3");
        Assert.Contains($"oci:{Registry.ImagesDirectory}/team/app:TAG", answer.ErrorMessage, StringComparison.Ordinal);
    }

    // ---- hostile and malformed requests ------------------------------------------------------------

    [Theory]
    [InlineData("/v2/..%2f..%2fetc/manifests/v1")]
    [InlineData("/v2/..%2F..%2Fetc/tags/list")]
    [InlineData("/v2/team%2fapp/manifests/v1")]
    [InlineData("/v2/a/../b/manifests/v1")]
    [InlineData("/v2/team/app/../../../etc/manifests/v1")]
    [InlineData("/v2/../etc/manifests/v1")]
    [InlineData("/v2/./team/app/manifests/v1")]
    [InlineData("/v2/%2e%2e/etc/manifests/v1")]
    [InlineData("/v2//etc/manifests/v1")]
    [InlineData("/v2/team//app/manifests/v1")]
    [InlineData("/v2/team/app//manifests/v1")]
    [InlineData("/v2/%2fetc/manifests/v1")]
    [InlineData("/v2/Team/App/manifests/v1")]
    [InlineData("/v2/team/APP/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("/v2/team%5capp/manifests/v1")]
    [InlineData("/v2/team\\app/manifests/v1")]
    [InlineData("/v2/team/app-/manifests/v1")]
    [InlineData("/v2/-team/manifests/v1")]
    [InlineData("/v2/team/a..b/manifests/v1")]
    [InlineData("/v2/team/a%20b/manifests/v1")]
    [InlineData("/v2/team/%zz/manifests/v1")]
    [InlineData("/v2/t%C3%A9am/manifests/v1")]
    [InlineData("/v2/team:app/manifests/v1")]
    public async Task A_name_outside_the_grammar_is_NAME_INVALID(string target)
    {
        AssertError(await GetAsync(target), 400, "NAME_INVALID");
        var head = await RawAsync("HEAD", target);
        Assert.Equal(400, head.Status);
        Assert.Empty(head.Body);
    }

    [Fact]
    public async Task Names_longer_than_255_characters_are_NAME_INVALID_and_255_is_only_unknown()
    {
        var tooLong = string.Join('/', Enumerable.Repeat(new string('a', 99), 3)); // 299 characters
        var answer = await GetAsync($"/v2/{tooLong}/manifests/v1");
        AssertError(answer, 400, "NAME_INVALID");
        Assert.Contains("more than 255", answer.ErrorMessage, StringComparison.Ordinal);
        Assert.True(answer.ErrorMessage.Length < 700, "the message quotes the name shortened");

        AssertError(await GetAsync($"/v2/{new string('b', 300)}/tags/list"), 400, "NAME_INVALID");
        AssertError(await GetAsync($"/v2/{new string('c', 255)}/tags/list"), 404, "NAME_UNKNOWN");
    }

    [Theory]
    [InlineData("/v2/team/app/manifests/sha256:abc")]
    [InlineData("/v2/team/app/manifests/sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000")]
    [InlineData("/v2/team/app/manifests/md5:d41d8cd98f00b204e9800998ecf8427e")]
    [InlineData("/v2/team/app/manifests/sha256:..%2f..%2foci-layout")]
    [InlineData("/v2/team/app/blobs/sha256:")]
    [InlineData("/v2/team/app/blobs/sha256")]
    [InlineData("/v2/team/app/blobs/..%2f..%2foci-layout")]
    [InlineData("/v2/team/app/blobs/sha256%3a0000000000000000000000000000000000000000000000000000000000000000%2f..")]
    [InlineData("/v2/team/app/blobs/sha512:0000")]
    [InlineData("/v2/team/app/blobs/")]
    public async Task A_malformed_digest_is_DIGEST_INVALID(string target) =>
        AssertError(await GetAsync(target), 400, "DIGEST_INVALID");

    [Theory]
    [InlineData("/v2/team/app/manifests/-v1")]
    [InlineData("/v2/team/app/manifests/.hidden")]
    [InlineData("/v2/team/app/manifests/v1%2f..%2f..")]
    [InlineData("/v2/team/app/manifests/a%20b")]
    [InlineData("/v2/team/app/manifests/")]
    public async Task A_malformed_tag_is_TAG_INVALID(string target) =>
        AssertError(await GetAsync(target), 400, "TAG_INVALID");

    [Fact]
    public async Task A_tag_of_129_characters_is_TAG_INVALID() =>
        AssertError(await GetAsync($"/v2/team/app/manifests/{new string('t', 129)}"), 400, "TAG_INVALID");

    [Theory]
    [InlineData("/v2/nope/manifests/v1")]
    [InlineData("/v2/nope/tags/list")]
    [InlineData("/v2/nope/blobs/" + Zeros)]
    [InlineData("/v2/team/manifests/v1")] // a directory above a layout is not one
    [InlineData("/v2/team/app/blobs/tags/list")] // a directory inside a layout is not one either
    [InlineData("/v2/team/app/blobs/sha256/manifests/v1")]
    public async Task A_name_with_no_layout_is_NAME_UNKNOWN(string target) =>
        AssertError(await GetAsync(target), 404, "NAME_UNKNOWN");

    [Fact]
    public async Task Unknown_tags_manifests_and_blobs_are_unknown()
    {
        var tag = await GetAsync("/v2/team/app/manifests/v9");
        AssertError(tag, 404, "MANIFEST_UNKNOWN");
        Assert.Contains("tags: latest, v1, v2", tag.ErrorMessage, StringComparison.Ordinal);
        AssertError(await GetAsync($"/v2/team/app/manifests/{Zeros}"), 404, "MANIFEST_UNKNOWN");
        AssertError(await GetAsync($"/v2/team/app/blobs/{Zeros}"), 404, "BLOB_UNKNOWN");
        // A blob of another layout is not this one's.
        AssertError(await GetAsync($"/v2/hello/manifests/{world.App.ManifestDigest}"), 404, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task A_layer_or_config_asked_for_as_a_manifest_is_MANIFEST_UNKNOWN()
    {
        var layer = await GetAsync($"/v2/team/app/manifests/{world.App.LayerDigest}");
        AssertError(layer, 404, "MANIFEST_UNKNOWN");
        var config = await GetAsync($"/v2/team/app/manifests/{world.App.ConfigDigest}");
        AssertError(config, 404, "MANIFEST_UNKNOWN");
        Assert.Contains("not an image manifest or index", config.ErrorMessage, StringComparison.Ordinal);
        // As blobs they are fine.
        Assert.Equal(200, (await GetAsync($"/v2/team/app/blobs/{world.App.ConfigDigest}")).Status);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/etc/passwd")]
    [InlineData("/v2/team/app/referrers/" + Zeros)]
    [InlineData("/v2/team/app")]
    [InlineData("/v2/team/app/blobs/sha256:../../../../etc/passwd")]
    [InlineData("/v2/_catalog")]
    [InlineData("/v20/")]
    public async Task Other_paths_are_404_UNSUPPORTED(string target) =>
        AssertError(await GetAsync(target), 404, "UNSUPPORTED");

    [Fact]
    public async Task A_symlinked_blob_pointing_outside_the_images_directory_is_refused()
    {
        world.Build("evil/blob", "v1", "evil");
        var secret = P("secret");
        await File.WriteAllTextAsync(secret, "the outside world's secret\n", Ct);
        var secretDigest = Digest.Compute(Digest.Sha256, File.ReadAllBytes(secret));
        File.CreateSymbolicLink(world.BlobPath("evil/blob", secretDigest), secret);

        var blob = await GetAsync($"/v2/evil/blob/blobs/{secretDigest}");
        AssertError(blob, 404, "BLOB_UNKNOWN");
        Assert.Contains("outside the images directory", blob.ErrorMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("secret\n", blob.Text, StringComparison.Ordinal);
        var head = await RawAsync("HEAD", $"/v2/evil/blob/blobs/{secretDigest}");
        Assert.Equal(404, head.Status);
        Assert.Empty(head.Body);

        // The same for a manifest: its blob replaced by a link to a manifest outside.
        var outside = world.BuildAt(P("outside-layout"), "v1", "outside");
        var manifestPath = world.BlobPath("evil/blob", outside.ManifestDigest);
        File.Delete(manifestPath);
        File.CreateSymbolicLink(manifestPath, Path.Combine(P("outside-layout/blobs/sha256"), outside.ManifestDigest.Hex));
        AssertError(await GetAsync($"/v2/evil/blob/manifests/{outside.ManifestDigest}"), 404, "MANIFEST_UNKNOWN");

        // A link through a directory: blobs/sha256 itself pointing outside.
        world.Build("evil/dir", "v1", "evil");
        var blobs = Path.Combine(world.Layout("evil/dir"), "blobs", "sha256");
        Directory.Delete(blobs, recursive: true);
        Directory.CreateSymbolicLink(blobs, P("outside-layout/blobs/sha256"));
        AssertError(await GetAsync($"/v2/evil/dir/blobs/{outside.LayerDigest}"), 404, "BLOB_UNKNOWN");
        AssertError(await GetAsync("/v2/evil/dir/manifests/v1"), 404, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task A_layout_linked_from_outside_is_refused_and_one_linked_from_inside_is_served()
    {
        var outside = P("outside");
        world.BuildAt(outside, "v1", "outside");
        Directory.CreateSymbolicLink(Path.Combine(world.Images, "linked-out"), outside);
        var answer = await GetAsync("/v2/linked-out/manifests/v1");
        AssertError(answer, 404, "NAME_UNKNOWN");
        Assert.Contains("outside the images directory", answer.ErrorMessage, StringComparison.Ordinal);
        AssertError(await GetAsync("/v2/linked-out/tags/list"), 404, "NAME_UNKNOWN");

        var alias = Path.Combine(world.Images, "alias");
        if (!Directory.Exists(alias))
        {
            Directory.CreateSymbolicLink(alias, Path.Combine(world.Images, "hello"));
        }
        var served = await GetAsync("/v2/alias/manifests/v1");
        Assert.Equal(200, served.Status);
        Assert.Equal(world.Hello.ManifestDigest.ToString(), served.Header("Docker-Content-Digest"));
    }

    [Fact]
    public async Task A_fifo_in_place_of_a_blob_is_BLOB_UNKNOWN_at_once_rather_than_a_hang()
    {
        world.Build("evil/fifo", "v1", "fifo");
        var digest = Digest.Compute(Digest.Sha256, "never written"u8);
        await HostTool.RunCheckedAsync("mkfifo", [world.BlobPath("evil/fifo", digest)], Ct);
        using var quick = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        quick.CancelAfter(TimeSpan.FromSeconds(10));
        var answer = await GetAsync($"/v2/evil/fifo/blobs/{digest}").WaitAsync(quick.Token);
        AssertError(answer, 404, "BLOB_UNKNOWN");
        Assert.Contains("not a regular file", answer.ErrorMessage, StringComparison.Ordinal);
        AssertError(await GetAsync($"/v2/evil/fifo/manifests/{digest}").WaitAsync(quick.Token), 404, "MANIFEST_UNKNOWN");
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("")]
    [InlineData("""{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:nope","size":1}]}""")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}""")]
    [InlineData("""[1,2,3]""")]
    [InlineData("""{"schemaVersion":2,"manifests":[],"manifests":[]}""")]
    public async Task A_corrupt_index_json_is_a_clear_unknown_naming_the_file(string index)
    {
        var name = $"broken/i{Guid.NewGuid():N}"[..20];
        var built = world.Build(name, "v1", "broken");
        await File.WriteAllTextAsync(Path.Combine(world.Layout(name), "index.json"), index, Ct);

        var manifest = await GetAsync($"/v2/{name}/manifests/v1");
        AssertError(manifest, 404, "MANIFEST_UNKNOWN");
        Assert.Contains(Path.Combine(Registry.ImagesDirectory, name, "index.json"), manifest.ErrorMessage, StringComparison.Ordinal);
        var tags = await GetAsync($"/v2/{name}/tags/list");
        AssertError(tags, 404, "NAME_UNKNOWN");
        Assert.Contains("index.json", tags.ErrorMessage, StringComparison.Ordinal);
        // By digest the index is not needed.
        Assert.Equal(200, (await GetAsync($"/v2/{name}/manifests/{built.ManifestDigest}")).Status);
    }

    [Fact]
    public async Task A_missing_index_or_a_broken_layout_marker_is_a_clear_unknown()
    {
        world.Build("broken/noindex", "v1", "x");
        File.Delete(Path.Combine(world.Layout("broken/noindex"), "index.json"));
        var answer = await GetAsync("/v2/broken/noindex/manifests/v1");
        AssertError(answer, 404, "MANIFEST_UNKNOWN");
        Assert.Contains("has no index.json", answer.ErrorMessage, StringComparison.Ordinal);

        world.Build("broken/marker", "v1", "x");
        await File.WriteAllTextAsync(Path.Combine(world.Layout("broken/marker"), "oci-layout"), """{"imageLayoutVersion":"9"}""", Ct);
        var marker = await GetAsync("/v2/broken/marker/manifests/v1");
        AssertError(marker, 404, "NAME_UNKNOWN");
        Assert.Contains("imageLayoutVersion", marker.ErrorMessage, StringComparison.Ordinal);
        await File.WriteAllTextAsync(Path.Combine(world.Layout("broken/marker"), "oci-layout"), "\0\0garbage", Ct);
        AssertError(await GetAsync("/v2/broken/marker/tags/list"), 404, "NAME_UNKNOWN");
    }

    [Fact]
    public async Task A_manifest_whose_bytes_do_not_match_its_digest_is_not_served()
    {
        var built = world.Build("broken/tampered", "v1", "x");
        var path = world.BlobPath("broken/tampered", built.ManifestDigest);
        var bytes = File.ReadAllBytes(path);
        bytes[^2] ^= 0x01;
        File.WriteAllBytes(path, bytes);

        var answer = await GetAsync("/v2/broken/tampered/manifests/v1");
        AssertError(answer, 404, "MANIFEST_UNKNOWN");
        Assert.Contains("the layout is corrupt", answer.ErrorMessage, StringComparison.Ordinal);
        AssertError(await GetAsync($"/v2/broken/tampered/manifests/{built.ManifestDigest}"), 404, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task A_nul_and_other_bytes_kestrel_refuses_before_routing_get_a_bare_400_and_it_keeps_serving()
    {
        // Kestrel itself answers these (a NUL, even percent-encoded, never reaches the handler): 400, no body.
        string[] targets =
        [
            "/v2/team%00/manifests/v1", "/v2/team/app/manifests/v1%00", $"/v2/team/app/blobs/{Zeros}%00",
            "/v2/team\0/manifests/v1", "/v2/t am/manifests/v1", "v2/team/app/manifests/v1",
        ];
        foreach (var target in targets)
        {
            var answer = await RawAsync("GET", target);
            Assert.True(answer.Status == 400 && answer.Body.Length == 0, $"{target}:\n{answer}");
        }
        Assert.Equal(200, (await GetAsync("/v2/team/app/manifests/v1")).Status);
    }

    [Fact]
    public async Task Many_hostile_requests_at_once_neither_crash_nor_hang_it()
    {
        var targets = new[]
        {
            "/v2/..%2f..%2fetc/manifests/v1", $"/v2/team/app/blobs/{Zeros}", "/v2/team/app/manifests/v1",
            $"/v2/team/app/blobs/{world.App.LayerDigest}", "/v2/%00/tags/list", "/v2/team/app/manifests/sha256:x",
        };
        var answers = await Task.WhenAll(Enumerable.Range(0, 60).Select(i => GetAsync(targets[i % targets.Length])));
        Assert.All(answers, a => Assert.InRange(a.Status, 200, 404));
        Assert.Equal(10, answers.Count(a => a.Status == 200 && a.Body.Length == world.App.LayerSize));
    }

    [Fact]
    public async Task It_logs_its_start_and_what_it_refused_but_never_request_headers()
    {
        var logger = new ListLogger();
        var images = P("logged");
        await using var registry = await DevRegistry.StartAsync(images, new IPEndPoint(IPAddress.Loopback, 0), logger, Ct);
        world.BuildAt(Path.Combine(images, "app"), "v1", "x");
        var secret = P("secret-file");
        await File.WriteAllTextAsync(secret, "outside\n", Ct);
        var digest = Digest.Compute(Digest.Sha256, File.ReadAllBytes(secret));
        File.CreateSymbolicLink(Path.Combine(images, "app/blobs/sha256", digest.Hex), secret);

        var answer = await RawAsync("GET", $"/v2/app/blobs/{digest}", "Authorization: Bearer s3cret-token-value\r\nCookie: session=s3cret-cookie\r\n", registry);
        AssertError(answer, 404, "BLOB_UNKNOWN");
        Assert.Equal(200, (await RawAsync("GET", "/v2/app/manifests/v1", "Authorization: Basic czNjcmV0\r\n", registry)).Status);

        var entries = logger.Entries;
        Assert.Contains(entries, e => e is { Level: LogLevel.Information, Id: 1 } && e.Text.Contains(registry.Host, StringComparison.Ordinal));
        Assert.Contains(entries, e => e is { Level: LogLevel.Warning, Id: 2 } && e.Text.Contains("outside the images directory", StringComparison.Ordinal));
        Assert.DoesNotContain(entries, e => e.Text.Contains("s3cret", StringComparison.Ordinal) || e.Text.Contains("czNjcmV0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Stopping_it_closes_the_port()
    {
        var images = P("images");
        var registry = await DevRegistry.StartAsync(images, new IPEndPoint(IPAddress.Loopback, 0), Ct);
        var endpoint = IPEndPoint.Parse(registry.Host);
        Assert.True(Directory.Exists(images), "a missing images directory is created");
        using (var response = await Http.GetAsync(new Uri(registry.BaseAddress, "/v2/"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        AssertError(await RawAsync("GET", "/v2/anything/tags/list", registry: registry), 404, "NAME_UNKNOWN");
        await registry.StopAsync(Ct);
        await registry.DisposeAsync();
        using var tcp = new TcpClient();
        await Assert.ThrowsAnyAsync<SocketException>(async () => await tcp.ConnectAsync(endpoint, Ct));
    }
}
