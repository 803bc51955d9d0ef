using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Trc.Oci.Images;
using Trc.Oci.Pull;
using Trc.Oci.Registry;
using Trc.Oci.Store;
using Trc.Oci.Tests.Fixtures;
using Trc.Testing.Registry;

namespace Trc.Oci.Tests.Registry;

/// <summary>An anonymous registry, and one behind htpasswd, each with images pushed by skopeo, shared by the class.</summary>
public sealed class RegistryWorld : IAsyncLifetime
{
    public LocalRegistry Open { get; private set; } = null!;

    public LocalRegistry Locked { get; private set; } = null!;

    public LayoutImage OciImage { get; private set; } = null!;

    public LayoutImage DockerImage { get; private set; } = null!;

    public LayoutIndex Index { get; private set; } = null!;

    public LayoutImage LockedImage { get; private set; } = null!;

    public static readonly Dictionary<string, byte[]> Files = new()
    {
        ["etc/motd"] = Encoding.UTF8.GetBytes("hello from the registry\n"),
        ["bin/data.bin"] = RandomNumberGenerator.GetBytes(300 * 1024),
    };

    public async Task InitializeAsync()
    {
        Open = await LocalRegistry.StartAsync(RegistryAuth.Anonymous, CancellationToken.None);
        Locked = await LocalRegistry.StartAsync(RegistryAuth.Htpasswd("puller", "s3cret-Pa55"), CancellationToken.None);
        var spec = new ImageSpec { Entrypoint = ["/bin/app"], Env = ["A=1"], WorkingDir = "/srv", User = "1000:1000" };
        OciImage = await Open.PushAsync("team/app", "v1", Files, CancellationToken.None, spec);
        DockerImage = await Open.PushAsync("team/docker", "v1", Files, CancellationToken.None, spec, format: "v2s2");
        Index = await Open.PushMultiArchAsync("team/multi", "v1", CancellationToken.None);
        LockedImage = await Locked.PushAsync("team/private", "v1", Files, CancellationToken.None, spec);
    }

    public async Task DisposeAsync()
    {
        await Open.DisposeAsync();
        await Locked.DisposeAsync();
    }
}

[SupportedOSPlatform("linux")]
public sealed class RegistryClientTests(RegistryWorld world) : IClassFixture<RegistryWorld>, IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("trc-registry-client-");
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(60));

    public void Dispose()
    {
        _dir.Delete(recursive: true);
        _cts.Dispose();
    }

    private CancellationToken Ct => _cts.Token;

    private BlobStore Store => new(Path.Combine(_dir.FullName, "store"));

    private static RegistryClient Client(RegistryCredentialStore? credentials = null) => new(new RegistryClientOptions
    {
        Credentials = credentials ?? RegistryCredentialStore.Empty,
        RetryDelay = TimeSpan.FromMilliseconds(10),
        MaxRetryDelay = TimeSpan.FromMilliseconds(50),
    });

    private static RegistryCredentialStore Creds(string host, string user, string password) =>
        RegistryCredentialStore.From(new Dictionary<string, RegistryCredentials> { [host] = new(user, password) });

    private static ImageReference Ref(string host, string repository, string tag) => ImageReference.Parse($"{host}/{repository}:{tag}");

    private string[] StoredBlobs() => Directory.GetFiles(Path.Combine(_dir.FullName, "store", "blobs"), "*", SearchOption.AllDirectories);

    [Fact]
    public async Task A_manifest_is_fetched_by_tag_and_by_digest_with_its_digest_checked()
    {
        using var client = Client();
        var byTag = await client.GetManifestAsync(Ref(world.Open.Host, "team/app", "v1"), null, Ct);
        Assert.Equal(world.OciImage.ManifestDigest, byTag.Digest.ToString());
        Assert.Equal(MediaTypes.OciManifest, byTag.MediaType);
        var byDigest = await client.GetManifestAsync(Ref(world.Open.Host, "team/app", "v1"), world.OciImage.ManifestDigest, Ct);
        Assert.Equal(byTag.Bytes, byDigest.Bytes);
    }

    [Theory]
    [InlineData("team/app")]
    [InlineData("team/docker")]
    public async Task An_oci_or_docker_image_pulls_and_unpacks_to_the_pushed_files(string repository)
    {
        using var client = Client();
        var puller = new ImagePuller(Store);
        var source = new RegistryImageSource(client, Ref(world.Open.Host, repository, "v1"));
        var pulled = await puller.PullAsync(source, null, null, Ct);
        Assert.Equal(["/bin/app"], pulled.Config.Config!.Entrypoint);
        Assert.Equal("/srv", pulled.Config.Config.WorkingDir);
        if (repository == "team/docker")
        {
            Assert.Equal(MediaTypes.DockerManifest, pulled.Resolved.RootMediaType);
        }

        var root = Path.Combine(_dir.FullName, "root");
        puller.Unpack(pulled, root, null, Ct);
        foreach (var (name, bytes) in RegistryWorld.Files)
        {
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(root, name)));
        }
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.FullName, "store"), "*.partial", SearchOption.AllDirectories));

        // A second pull finds every blob in the store: the registry sees manifests only.
        var again = await puller.PullAsync(source, null, null, Ct);
        Assert.Equal(pulled.Resolved.ManifestDigest, again.Resolved.ManifestDigest);
    }

    [Theory]
    [InlineData("linux/amd64", 0)]
    [InlineData("linux/arm64", 1)]
    [InlineData("linux/arm64/v8", 1)]
    public async Task An_index_resolves_to_the_platform_asked_for(string platform, int expected)
    {
        using var client = Client();
        var source = new RegistryImageSource(client, Ref(world.Open.Host, "team/multi", "v1"));
        var pulled = await new ImagePuller(Store).PullAsync(source, ImagePlatform.Parse(platform), null, Ct);
        Assert.Equal(world.Index.IndexDigest, pulled.Resolved.RootDigest.ToString());
        Assert.Equal(world.Index.Images[expected].ManifestDigest, pulled.Resolved.ManifestDigest.ToString());
        Assert.Equal(
            new Dictionary<string, string> { ["linux/amd64"] = world.Index.Images[0].ManifestDigest, ["linux/arm64/v8"] = world.Index.Images[1].ManifestDigest },
            pulled.Resolved.PlatformDigests.ToDictionary(p => p.Key, p => p.Value.ToString()));
    }

    [Fact]
    public async Task Pinning_a_tag_gives_the_index_digest_and_every_platform_without_choosing_one()
    {
        using var client = Client();
        var pinned = await ImagePuller.PinAsync(new RegistryImageSource(client, Ref(world.Open.Host, "team/multi", "v1")), Ct);
        Assert.Equal(world.Index.IndexDigest, pinned.Digest.ToString());
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], pinned.PlatformDigests.Keys.Order());
        var single = await ImagePuller.PinAsync(new RegistryImageSource(client, Ref(world.Open.Host, "team/app", "v1")), Ct);
        Assert.Equal(world.OciImage.ManifestDigest, single.Digest.ToString());
        Assert.Empty(single.PlatformDigests);
    }

    [Fact]
    public async Task A_platform_the_index_lacks_is_an_error_listing_those_it_has()
    {
        using var client = Client();
        var source = new RegistryImageSource(client, Ref(world.Open.Host, "team/multi", "v1"));
        var e = await Assert.ThrowsAsync<PlatformNotFoundException>(() => new ImagePuller(Store).PullAsync(source, ImagePlatform.Parse("linux/s390x"), null, Ct));
        Assert.Contains("linux/amd64", e.Message);
        Assert.Contains("linux/arm64/v8", e.Message);
    }

    [Fact]
    public async Task An_unknown_tag_or_repository_is_not_found_with_the_registry_code()
    {
        using var client = Client();
        var tag = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(Ref(world.Open.Host, "team/app", "nope"), null, Ct));
        Assert.Equal(RegistryErrorKind.NotFound, tag.Kind);
        Assert.Contains("MANIFEST_UNKNOWN", tag.Message);
        Assert.Contains($"{world.Open.Host}/team/app: manifest nope", tag.Message);
        var repo = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(Ref(world.Open.Host, "team/none", "v1"), null, Ct));
        Assert.Equal(RegistryErrorKind.NotFound, repo.Kind);
    }

    [Fact]
    public async Task A_blob_corrupted_in_the_registry_storage_is_refused_and_not_stored()
    {
        // A registry of its own: the corruption must not leak into other tests.
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Anonymous, Ct);
        var image = await registry.PushAsync("team/app", "v1", RegistryWorld.Files, Ct);
        var layer = image.LayerDigests.Single();
        var data = registry.BlobDataPath(layer);
        var bytes = File.ReadAllBytes(data);
        bytes[bytes.Length / 2] ^= 0x55;
        File.WriteAllBytes(data, bytes);

        using var client = Client();
        var e = await Assert.ThrowsAsync<RegistryException>(() => new ImagePuller(Store).PullAsync(new RegistryImageSource(client, Ref(registry.Host, "team/app", "v1")), null, null, Ct));
        Assert.Equal(RegistryErrorKind.Verification, e.Kind);
        Assert.Contains($"blob {layer}", e.Message);
        Assert.DoesNotContain(StoredBlobs(), p => p.EndsWith(layer[7..], StringComparison.Ordinal));
    }

    // ---- authentication -------------------------------------------------------------------------

    [Fact]
    public async Task Basic_auth_pulls_with_the_configured_credentials()
    {
        using var client = Client(Creds(world.Locked.Host, "puller", "s3cret-Pa55"));
        var pulled = await new ImagePuller(Store).PullAsync(new RegistryImageSource(client, Ref(world.Locked.Host, "team/private", "v1")), null, null, Ct);
        Assert.Equal(world.LockedImage.ManifestDigest, pulled.Resolved.ManifestDigest.ToString());
    }

    [Fact]
    public async Task Basic_auth_without_or_with_wrong_credentials_is_refused_and_never_echoes_the_password()
    {
        using var anonymous = Client();
        var none = await Assert.ThrowsAsync<RegistryException>(() => anonymous.GetManifestAsync(Ref(world.Locked.Host, "team/private", "v1"), null, Ct));
        Assert.Equal(RegistryErrorKind.Unauthorized, none.Kind);
        Assert.Contains("requires a user name and password, and none is configured", none.Message);

        using var wrong = Client(Creds(world.Locked.Host, "puller", "wrong-password-xyz"));
        var refused = await Assert.ThrowsAsync<RegistryException>(() => wrong.GetManifestAsync(Ref(world.Locked.Host, "team/private", "v1"), null, Ct));
        Assert.Equal(RegistryErrorKind.Unauthorized, refused.Kind);
        Assert.Contains("refused the credentials", refused.Message);
        Assert.DoesNotContain("wrong-password-xyz", refused.ToString());
    }

    [Fact]
    public async Task Bearer_tokens_are_fetched_with_credentials_only_from_a_trusted_realm()
    {
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Token(), Ct);
        var image = await registry.PushAsync("team/token", "v1", RegistryWorld.Files, Ct);
        var tokens = registry.Tokens!;
        var user = tokens.Options.User;
        var password = tokens.Options.Password;

        // The realm is another port of 127.0.0.1, so another origin: credentials are withheld by default.
        tokens.ClearRequests();
        using (var untrusted = Client(Creds(registry.Host, user, password)))
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => untrusted.GetManifestAsync(Ref(registry.Host, "team/token", "v1"), null, Ct));
            Assert.Equal(RegistryErrorKind.Unauthorized, e.Kind);
            Assert.Contains("token_hosts", e.Message);
            Assert.DoesNotContain(password, e.ToString());
        }
        Assert.NotEmpty(tokens.Requests);
        Assert.All(tokens.Requests, r => Assert.False(r.HadAuthorization));

        // Listed in token_hosts: the token service gets them, and the pull works end to end.
        tokens.ClearRequests();
        var trusted = RegistryCredentialStore.From(new Dictionary<string, RegistryCredentials>
        {
            [registry.Host] = new(user, password) { TokenHosts = [tokens.Realm.Authority] },
        });
        using var client = Client(trusted);
        var pulled = await new ImagePuller(Store).PullAsync(new RegistryImageSource(client, Ref(registry.Host, "team/token", "v1")), null, null, Ct);
        Assert.Equal(image.ManifestDigest, pulled.Resolved.ManifestDigest.ToString());
        Assert.Contains(tokens.Requests, r => r.HadAuthorization && r.Scopes.Any(s => s.Name == "team/token" && s.Actions.Contains("pull")));
        // One token serves the manifest, the config and the layer: the client caches it per scope.
        Assert.Single(tokens.Requests);
    }

    [Fact]
    public async Task An_anonymous_bearer_pull_sends_no_credentials()
    {
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Token(new TokenServerOptions { AllowAnonymousPull = true }), Ct);
        var image = await registry.PushAsync("team/public", "v1", RegistryWorld.Files, Ct);
        registry.Tokens!.ClearRequests();
        using var client = Client();
        var pulled = await new ImagePuller(Store).PullAsync(new RegistryImageSource(client, Ref(registry.Host, "team/public", "v1")), null, null, Ct);
        Assert.Equal(image.ManifestDigest, pulled.Resolved.ManifestDigest.ToString());
        Assert.All(registry.Tokens.Requests, r => Assert.False(r.HadAuthorization));
    }

    [Fact]
    public async Task A_failing_token_service_is_unavailable_after_retries()
    {
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Token(), Ct);
        registry.Tokens!.FailWithStatus = 503;
        using var client = Client();
        var e = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(Ref(registry.Host, "team/x", "v1"), null, Ct));
        Assert.Equal(RegistryErrorKind.Unavailable, e.Kind);
        Assert.Contains("gave up after 4 attempts", e.Message);
    }
}
