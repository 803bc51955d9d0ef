using System.Net;
using System.Text;
using Trc.Testing;
using Trc.Testing.Registry;

namespace Trc.Oci.Tests.Fixtures;

public sealed class LocalRegistryTests
{
    private static readonly Dictionary<string, byte[]> Files = new()
    {
        ["hello.txt"] = Encoding.UTF8.GetBytes("hello from a real registry\n"),
    };

    [Fact]
    public async Task An_anonymous_registry_starts_in_under_two_seconds_and_serves_what_skopeo_pushed()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Anonymous, cts.Token);
        Assert.True(registry.StartupTime < TimeSpan.FromSeconds(2), $"docker-registry took {registry.StartupTime} to answer");

        var image = await registry.PushAsync("trc/hello", "v1", Files, cts.Token);

        using var http = RegistryHttp.CreateClient();
        using var manifest = await RegistryHttp.GetAsync(http, new Uri(registry.BaseUri, "v2/trc/hello/manifests/v1"), cts.Token, ImageTools.OciManifestMediaType);
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal(image.ManifestDigest, manifest.Headers.GetValues("Docker-Content-Digest").Single());
        Assert.Equal(image.ManifestBytes, await manifest.Content.ReadAsByteArrayAsync(cts.Token));
        var layer = image.LayerDigests.Single();
        Assert.Equal(image.ReadBlob(layer), await http.GetByteArrayAsync(new Uri(registry.BaseUri, $"v2/trc/hello/blobs/{layer}"), cts.Token));
        Assert.True(File.Exists(registry.BlobDataPath(layer)), "the stored blob is where BlobDataPath says, for a test that corrupts it");
    }

    [Fact]
    public async Task An_htpasswd_registry_wants_its_user_and_password()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Htpasswd("alice", "s3cret pass:word"), cts.Token);
        using var http = RegistryHttp.CreateClient();
        var v2 = new Uri(registry.BaseUri, "v2/");

        using (var anonymous = await RegistryHttp.GetAsync(http, v2, cts.Token))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Basic", RegistryHttp.ParseChallenge(anonymous.Headers.WwwAuthenticate.Single().ToString())["scheme"]);
        }
        using (var wrong = await RegistryHttp.GetAsync(http, v2, cts.Token, authorization: RegistryHttp.Basic(new("alice", "nope"))))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }
        using (var right = await RegistryHttp.GetAsync(http, v2, cts.Token, authorization: RegistryHttp.Basic(registry.Credentials!)))
        {
            Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        }
        await registry.PushAsync("trc/private", "v1", Files, cts.Token);
        var pullAnonymously = ImageTools.SkopeoCopyAsync(registry.Reference("trc/private", "v1"), $"oci:{registry.Directory}/pulled:v1", null, null, all: false, cts.Token);
        Assert.Contains("unauthorized", (await Assert.ThrowsAsync<ExternalToolException>(() => pullAnonymously)).Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Registries_started_together_get_their_own_ports_and_dirs_and_leave_nothing_behind()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var registries = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => LocalRegistry.StartAsync(RegistryAuth.Anonymous, cts.Token)));
        var ports = registries.Select(r => r.Port).ToList();
        var dirs = registries.Select(r => r.Directory).ToList();
        var pids = registries.Select(r => r.ProcessId).ToList();
        Assert.Equal(4, ports.Distinct().Count());
        Assert.Equal(4, dirs.Distinct().Count());

        foreach (var registry in registries)
        {
            await registry.DisposeAsync();
        }

        Assert.All(dirs, d => Assert.False(Directory.Exists(d)));
        Assert.All(pids, pid => Assert.Throws<ArgumentException>(() => System.Diagnostics.Process.GetProcessById(pid)));
    }
}
