using System.Runtime.Versioning;
using Trc.Oci.Images;
using Trc.Oci.Pull;
using Trc.Oci.Registry;
using Trc.Oci.Store;
using Trc.Oci.Tests.Fixtures;
using Trc.Testing.Registry;

namespace Trc.Oci.Tests.Registry;

/// <summary>
/// The registry client against a misbehaving registry: a real htpasswd registry behind
/// <see cref="HostileRegistryProxy"/>, switched per test into corrupting, resizing, redirecting,
/// failing. The client talks to the proxy's host, with the registry's credentials.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class RegistryClientHostileTests(HostileProxyWorld world) : IClassFixture<HostileProxyWorld>, IAsyncLifetime
{
    private readonly HostileRegistryProxy _proxy = HostileRegistryProxy.Start(world.Registry);
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("trc-hostile-");
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(60));
    private const string Password = "proxy-pass";

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        _dir.Delete(recursive: true);
        _cts.Dispose();
    }

    private BlobStore Store => new(Path.Combine(_dir.FullName, "store"));

    private RegistryClient Client(int maxAttempts = 4) => new(new RegistryClientOptions
    {
        Credentials = RegistryCredentialStore.From(new Dictionary<string, RegistryCredentials> { [_proxy.Host] = new("proxy-user", Password) }),
        RetryDelay = TimeSpan.FromMilliseconds(10),
        MaxRetryDelay = TimeSpan.FromMilliseconds(50),
        MaxAttempts = maxAttempts,
    });

    private Task<PulledImage> PullAsync(RegistryClient client) =>
        new ImagePuller(Store).PullAsync(new RegistryImageSource(client, ImageReference.Parse($"{_proxy.Host}/trc/app:v1")), null, null, _cts.Token);

    private bool IsLayer(string path) => path.EndsWith(world.Layer, StringComparison.Ordinal);

    private void AssertLayerNotStored()
    {
        var blobs = Path.Combine(_dir.FullName, "store", "blobs");
        Assert.False(File.Exists(Path.Combine(blobs, "sha256", world.Layer[7..])), "the layer must not be stored");
        var ingest = Path.Combine(_dir.FullName, "store", "ingest");
        Assert.True(!Directory.Exists(ingest) || Directory.GetFiles(ingest).Length == 0, "no partial file may stay");
    }

    [Theory]
    [InlineData(BodyFault.CorruptOneByte, "hash to sha256:")]
    [InlineData(BodyFault.Truncate, "but the blob's descriptor says")]
    [InlineData(BodyFault.AppendExtra, "but the blob's descriptor says")]
    public async Task A_wrong_blob_body_is_refused_nothing_is_cached_and_it_is_not_retried(BodyFault fault, string expected)
    {
        _proxy.BodyFault = fault;
        _proxy.BodyFaultAppliesTo = IsLayer;
        using var client = Client();
        var e = await Assert.ThrowsAsync<RegistryException>(() => PullAsync(client));
        Assert.Equal(RegistryErrorKind.Verification, e.Kind);
        Assert.Contains(world.Layer, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Contains("nothing stored", e.Message);
        AssertLayerNotStored();
        // Wrong bytes are the server's answer, not bad luck: one request for the layer, no retry.
        Assert.Equal(1, _proxy.CountRequests(r => r.Path.EndsWith(world.Layer, StringComparison.Ordinal) && r.Status == 200));
    }

    [Fact]
    public async Task A_body_cut_mid_way_is_retried_then_given_up_with_nothing_cached()
    {
        _proxy.BodyFault = BodyFault.CutMidBody;
        _proxy.BodyFaultAppliesTo = IsLayer;
        using var client = Client(maxAttempts: 3);
        var e = await Assert.ThrowsAsync<RegistryException>(() => PullAsync(client));
        Assert.Equal(RegistryErrorKind.Unavailable, e.Kind);
        Assert.Contains("gave up after 3 attempts", e.Message);
        AssertLayerNotStored();
        Assert.Equal(3, _proxy.CountRequests(r => r.Path.EndsWith(world.Layer, StringComparison.Ordinal) && r.Fault == "CutMidBody"));
    }

    [Fact]
    public async Task A_wrong_docker_content_digest_on_a_manifest_is_refused()
    {
        _proxy.ReplaceManifestDigest = true;
        using var client = Client();
        var e = await Assert.ThrowsAsync<RegistryException>(() => PullAsync(client));
        Assert.Equal(RegistryErrorKind.Verification, e.Kind);
        Assert.Contains($"Docker-Content-Digest says {_proxy.ReplacementDigest}", e.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.FullName, "store", "blobs"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_redirect_to_another_host_gets_no_credentials_and_the_blob_still_verifies()
    {
        _proxy.BlobRedirect = BlobRedirect.OtherHost;
        using var client = Client();
        var pulled = await PullAsync(client);
        Assert.Equal(world.Image.ManifestDigest, pulled.Resolved.ManifestDigest.ToString());
        Assert.NotEmpty(_proxy.RedirectTargetRequests);
        Assert.All(_proxy.RedirectTargetRequests, r => Assert.False(r.HasHeader("Authorization"), $"{r.Target} got an Authorization header"));
        // The registry itself did get them.
        Assert.Contains(_proxy.Requests, r => r.HadAuthorization && r.Fault == "redirect:OtherHost");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_redirect_within_the_registry_keeps_the_credentials(bool relative)
    {
        _proxy.BlobRedirect = BlobRedirect.SameHost;
        _proxy.RelativeRedirectLocation = relative;
        using var client = Client();
        var pulled = await PullAsync(client);
        Assert.Equal(world.Image.ManifestDigest, pulled.Resolved.ManifestDigest.ToString());
        Assert.Contains(_proxy.Requests, r => r.Target.Contains(HostileRegistryProxy.RedirectedMarker, StringComparison.Ordinal) && r.HadAuthorization && r.Status == 200);
    }

    [Fact]
    public async Task Transient_503s_are_retried_until_the_registry_answers()
    {
        _proxy.FailNext(2);
        using var client = Client();
        var pulled = await PullAsync(client);
        Assert.Equal(world.Image.ManifestDigest, pulled.Resolved.ManifestDigest.ToString());
        Assert.Equal(2, _proxy.CountRequests(r => r.Status == 503));
    }

    [Fact]
    public async Task A_registry_that_keeps_failing_is_unavailable_with_its_status()
    {
        _proxy.FailNext(100, status: 502);
        using var client = Client();
        var e = await Assert.ThrowsAsync<RegistryException>(() => PullAsync(client));
        Assert.Equal(RegistryErrorKind.Unavailable, e.Kind);
        Assert.Contains("answered 502", e.Message);
        Assert.Contains("gave up after 4 attempts", e.Message);
        Assert.Equal(4, _proxy.CountRequests(r => r.Status == 502));
    }

    [Fact]
    public async Task Too_many_requests_honours_retry_after_up_to_the_cap()
    {
        _proxy.FailNext(1, status: 429, retryAfter: "1");
        using var client = Client();
        var started = System.Diagnostics.Stopwatch.StartNew();
        var pulled = await PullAsync(client);
        Assert.Equal(world.Image.ManifestDigest, pulled.Resolved.ManifestDigest.ToString());
        // Retry-After: 1 asks for a second; the client's cap here is 50 ms, which wins.
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(1), $"took {started.Elapsed}");
    }

    [Fact]
    public async Task A_registry_that_is_gone_is_unavailable_with_the_address()
    {
        using var client = new RegistryClient(new RegistryClientOptions { RetryDelay = TimeSpan.FromMilliseconds(1), MaxAttempts = 2 });
        var e = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(ImageReference.Parse("127.0.0.1:1/trc/app:v1"), null, _cts.Token));
        Assert.Equal(RegistryErrorKind.Unavailable, e.Kind);
        Assert.Contains("cannot reach 127.0.0.1:1", e.Message);
    }
}
