using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Trc.Testing.Registry;

namespace Trc.Oci.Tests.Fixtures;

/// <summary>One htpasswd registry with one image for the class; each test has its own proxy.</summary>
public sealed class HostileProxyWorld : IAsyncLifetime
{
    public LocalRegistry Registry { get; private set; } = null!;

    public LayoutImage Image { get; private set; } = null!;

    /// <summary>The image's only layer: 64 KiB of random bytes, gzipped (so about as big).</summary>
    public string Layer => Image.LayerDigests.Single();

    public byte[] LayerBytes => Image.ReadBlob(Layer);

    public async Task InitializeAsync()
    {
        Registry = await LocalRegistry.StartAsync(RegistryAuth.Htpasswd("proxy-user", "proxy-pass"), CancellationToken.None);
        Image = await Registry.PushAsync("trc/app", "v1", new Dictionary<string, byte[]> { ["random.bin"] = RandomNumberGenerator.GetBytes(64 * 1024) }, CancellationToken.None);
    }

    public async Task DisposeAsync() => await Registry.DisposeAsync();
}

public sealed class HostileRegistryProxyTests(HostileProxyWorld world) : IClassFixture<HostileProxyWorld>, IAsyncLifetime
{
    private readonly HostileRegistryProxy _proxy = HostileRegistryProxy.Start(world.Registry);
    private readonly HttpClient _http = RegistryHttp.CreateClient();
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(60));

    private AuthenticationHeaderValue Auth => RegistryHttp.Basic(world.Registry.Credentials!);

    private Uri BlobUri => new(_proxy.Address, $"v2/trc/app/blobs/{world.Layer}");

    private Uri ManifestUri => new(_proxy.Address, "v2/trc/app/manifests/v1");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _proxy.DisposeAsync();
        _cts.Dispose();
    }

    private async Task<(HttpStatusCode Status, byte[] Body, HttpResponseMessage Response)> GetAsync(Uri uri, AuthenticationHeaderValue? auth, string? accept = null)
    {
        var response = await RegistryHttp.GetAsync(_http, uri, _cts.Token, accept, auth);
        return (response.StatusCode, await response.Content.ReadAsByteArrayAsync(_cts.Token), response);
    }

    [Fact]
    public async Task A_faithful_proxy_passes_pulls_pushes_and_auth_through()
    {
        var (status, body, _) = await GetAsync(BlobUri, Auth);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(world.LayerBytes, body);
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(BlobUri, null)).Status);
        var (_, _, head) = await GetAsync(ManifestUri, Auth, ImageTools.OciManifestMediaType);
        Assert.Equal(world.Image.ManifestDigest, head.Headers.GetValues("Docker-Content-Digest").Single());

        // A push through the proxy: chunked PATCH bodies and upload Locations that name the proxy.
        await ImageTools.SkopeoCopyAsync(world.Image.OciReference, $"docker://{_proxy.Host}/trc/through-proxy:v1", null, world.Registry.Credentials, all: false, _cts.Token);
        Assert.Contains(_proxy.Requests, r => r.Method == "PUT" && r.Path == "/v2/trc/through-proxy/manifests/v1" && r.Status == 201);
        Assert.All(_proxy.Requests, r => Assert.Null(r.Fault));
    }

    [Fact]
    public async Task A_chunked_upload_on_a_kept_alive_connection_is_stored_whole()
    {
        var blob = RandomNumberGenerator.GetBytes(100_000);
        var digest = ImageTools.Sha256Digest(blob);
        using var start = new HttpRequestMessage(HttpMethod.Post, new Uri(_proxy.Address, "v2/trc/chunked/blobs/uploads/")) { Headers = { Authorization = Auth } };
        using var started = await _http.SendAsync(start, _cts.Token);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var location = new Uri(_proxy.Address, started.Headers.Location!);
        Assert.Equal(_proxy.Address.Authority, location.Authority);

        // A stream of unknown length goes out chunked.
        using var put = new HttpRequestMessage(HttpMethod.Put, $"{location}&digest={Uri.EscapeDataString(digest)}")
        {
            Headers = { Authorization = Auth, TransferEncodingChunked = true },
            Content = new StreamContent(new MemoryStream(blob)),
        };
        using var stored = await _http.SendAsync(put, _cts.Token);
        Assert.Equal(HttpStatusCode.Created, stored.StatusCode);

        var (status, body, _) = await GetAsync(new Uri(_proxy.Address, $"v2/trc/chunked/blobs/{digest}"), Auth);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(blob, body);
    }

    [Fact]
    public async Task A_corrupted_blob_keeps_its_length_but_not_its_digest()
    {
        _proxy.BodyFault = BodyFault.CorruptOneByte;
        var (status, body, response) = await GetAsync(BlobUri, Auth);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(world.LayerBytes.Length, body.Length);
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.NotEqual(world.Layer, ImageTools.Sha256Digest(body));
        Assert.Equal(1, _proxy.CountRequests(r => r.Fault == "CorruptOneByte"));
        // Manifests are left alone: the fault is for blob paths unless told otherwise.
        Assert.Equal(world.Image.ManifestBytes, (await GetAsync(ManifestUri, Auth, ImageTools.OciManifestMediaType)).Body);
    }

    [Theory]
    [InlineData(BodyFault.Truncate, 7, -7)]
    [InlineData(BodyFault.AppendExtra, 3, 3)]
    public async Task A_resized_blob_comes_with_a_matching_content_length(BodyFault fault, int bytes, int change)
    {
        _proxy.BodyFault = fault;
        _proxy.BodyFaultBytes = bytes;
        var (status, body, response) = await GetAsync(BlobUri, Auth);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(world.LayerBytes.Length + change, body.Length);
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.Equal(world.LayerBytes.AsSpan(0, Math.Min(body.Length, world.LayerBytes.Length)).ToArray(), body.AsSpan(0, Math.Min(body.Length, world.LayerBytes.Length)).ToArray());
    }

    [Fact]
    public async Task A_cut_connection_ends_the_body_early_and_the_next_request_works()
    {
        _proxy.BodyFault = BodyFault.CutMidBody;
        var e = await Assert.ThrowsAnyAsync<Exception>(() => RegistryHttp.GetAsync(_http, BlobUri, _cts.Token, authorization: Auth));
        Assert.True(e is HttpRequestException or IOException, e.ToString());

        _proxy.Reset();
        Assert.Equal(world.LayerBytes, (await GetAsync(BlobUri, Auth)).Body);
    }

    [Fact]
    public async Task A_replaced_manifest_digest_header_is_valid_but_wrong_on_get_and_head()
    {
        _proxy.ReplaceManifestDigest = true;
        foreach (var method in new[] { HttpMethod.Get, HttpMethod.Head })
        {
            using var response = await RegistryHttp.GetAsync(_http, ManifestUri, _cts.Token, ImageTools.OciManifestMediaType, Auth, method);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var header = response.Headers.GetValues("Docker-Content-Digest").Single();
            Assert.Equal(_proxy.ReplacementDigest, header);
            Assert.NotEqual(world.Image.ManifestDigest, header);
            Assert.Matches("^sha256:[0-9a-f]{64}$", header);
        }
    }

    [Fact]
    public async Task A_redirect_to_another_host_serves_the_blob_there_and_records_what_reached_it()
    {
        _proxy.BlobRedirect = BlobRedirect.OtherHost;
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(BlobUri, null)).Status); // no redirect before the registry says yes

        var (status, _, response) = await GetAsync(BlobUri, Auth);
        Assert.Equal(HttpStatusCode.TemporaryRedirect, status);
        var location = response.Headers.Location!;
        Assert.Equal(_proxy.RedirectHost, location.Authority);
        Assert.NotEqual(_proxy.Address.Authority, location.Authority);

        var (redirectedStatus, body, _) = await GetAsync(location, null);
        Assert.Equal(HttpStatusCode.OK, redirectedStatus);
        Assert.Equal(world.LayerBytes, body);
        var received = Assert.Single(_proxy.RedirectTargetRequests);
        Assert.False(received.HasHeader("Authorization"));
        Assert.Equal(_proxy.RedirectHost, received.Header("Host"));

        // A client that wrongly keeps its credentials is caught too.
        await GetAsync(location, Auth);
        Assert.True(_proxy.RedirectTargetRequests[^1].HasHeader("Authorization"));
    }

    [Fact]
    public async Task A_same_host_redirect_still_needs_the_credentials()
    {
        _proxy.BlobRedirect = BlobRedirect.SameHost;
        var (status, _, response) = await GetAsync(BlobUri, Auth);
        Assert.Equal(HttpStatusCode.TemporaryRedirect, status);
        var location = response.Headers.Location!;
        Assert.Equal(_proxy.Address.Authority, location.Authority);

        var (followedStatus, body, _) = await GetAsync(location, Auth);
        Assert.Equal(HttpStatusCode.OK, followedStatus);
        Assert.Equal(world.LayerBytes, body);
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(location, null)).Status);
    }

    [Fact]
    public async Task The_first_n_matching_requests_fail_with_503_and_then_pass()
    {
        _proxy.FailNext(2, r => HostileRegistryProxy.IsBlobPath(r.Path), retryAfter: "0");
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(ManifestUri, Auth, ImageTools.OciManifestMediaType)).Status);
        var first = await GetAsync(BlobUri, Auth);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, first.Status);
        Assert.Equal("0", first.Response.Headers.GetValues("Retry-After").Single());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await GetAsync(BlobUri, Auth)).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(BlobUri, Auth)).Status);
        Assert.Equal(3, _proxy.CountRequests(r => HostileRegistryProxy.IsBlobPath(r.Path)));
        Assert.Equal(2, _proxy.CountRequests(r => r.Fault == "503"));
        Assert.Equal(4, _proxy.RequestCount);
    }
}
