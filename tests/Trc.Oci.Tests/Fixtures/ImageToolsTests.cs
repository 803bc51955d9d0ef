using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using Trc.Testing;
using Trc.Testing.Registry;

namespace Trc.Oci.Tests.Fixtures;

public sealed class ImageToolsTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "trc-imagetools-" + Guid.NewGuid().ToString("N"));
    private LocalRegistry _registry = null!;

    public async Task InitializeAsync() => _registry = await LocalRegistry.StartAsync(RegistryAuth.Anonymous, CancellationToken.None);

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        ImageTools.DeleteDirectory(_dir);
    }

    [Fact]
    public async Task A_umoci_image_has_whole_layer_tars_in_order_and_the_config_asked_for()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var spec = new ImageSpec
        {
            Entrypoint = ["/bin/app", "--flag"],
            Cmd = ["serve", "two words"],
            Env = ["A=1", "PATH=/usr/bin"],
            WorkingDir = "/srv",
            User = "1000:1000",
            Architecture = "arm64",
        };
        var image = await ImageTools.CreateUmociLayoutAsync(_dir, "v1",
            [
                new Dictionary<string, byte[]> { ["etc/app.conf"] = "one\n"u8.ToArray(), ["bin/app"] = "#!/bin/sh\n"u8.ToArray() },
                new Dictionary<string, byte[]> { ["etc/app.conf"] = "two\n"u8.ToArray() },
            ],
            spec, cts.Token);

        Assert.Equal(2, image.LayerDigests.Count);
        var first = Untar(image.ReadBlob(image.LayerDigests[0]));
        var second = Untar(image.ReadBlob(image.LayerDigests[1]));
        Assert.Equal("one\n", first["etc/app.conf"]);
        Assert.Equal("two\n", second["etc/app.conf"]);
        Assert.DoesNotContain("bin/app", second.Keys);

        using var config = JsonDocument.Parse(image.ReadBlob(image.ConfigDigest));
        var root = config.RootElement;
        Assert.Equal("arm64", root.GetProperty("architecture").GetString());
        Assert.Equal("linux", root.GetProperty("os").GetString());
        var c = root.GetProperty("config");
        Assert.Equal(["/bin/app", "--flag"], c.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["serve", "two words"], c.GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("A=1", c.GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("/srv", c.GetProperty("WorkingDir").GetString());
        Assert.Equal("1000:1000", c.GetProperty("User").GetString());
    }

    [Fact]
    public async Task A_multi_arch_index_is_pushed_whole_with_all()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var index = await _registry.PushMultiArchAsync("trc/multi", "v1", cts.Token);

        using var http = RegistryHttp.CreateClient();
        using var response = await RegistryHttp.GetAsync(http, new Uri(_registry.BaseUri, "v2/trc/multi/manifests/v1"), cts.Token, RegistryHttp.AnyManifest);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(ImageTools.OciIndexMediaType, response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(index.IndexDigest, response.Headers.GetValues("Docker-Content-Digest").Single());
        using var json = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(cts.Token));
        var platforms = json.RootElement.GetProperty("manifests").EnumerateArray()
            .Select(m => m.GetProperty("platform"))
            .Select(p => $"{p.GetProperty("os").GetString()}/{p.GetProperty("architecture").GetString()}"
                + (p.TryGetProperty("variant", out var v) ? "/" + v.GetString() : ""))
            .ToList();
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], platforms);
        Assert.Equal(2, index.Images.Select(i => i.LayerDigests.Single()).Distinct().Count());
        foreach (var image in index.Images)
        {
            using var child = await RegistryHttp.GetAsync(http, new Uri(_registry.BaseUri, $"v2/trc/multi/manifests/{image.ManifestDigest}"), cts.Token, RegistryHttp.AnyManifest);
            Assert.Equal(HttpStatusCode.OK, child.StatusCode);
        }
    }

    [Fact]
    public async Task Skopeo_can_push_a_docker_schema2_manifest_instead()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _registry.PushAsync("trc/docker", "v1", new Dictionary<string, byte[]> { ["a"] = [1, 2, 3] }, cts.Token, format: "v2s2");

        using var http = RegistryHttp.CreateClient();
        using var response = await RegistryHttp.GetAsync(http, new Uri(_registry.BaseUri, "v2/trc/docker/manifests/v1"), cts.Token, RegistryHttp.AnyManifest);
        Assert.Equal(ImageTools.DockerManifestMediaType, response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_failing_tool_is_reported_with_its_command_line_and_stderr()
    {
        var e = await Assert.ThrowsAsync<ExternalToolException>(() =>
            ImageTools.RunAsync("umoci", ["stat", "--image", Path.Combine(_dir, "missing") + ":v1"], CancellationToken.None));
        Assert.StartsWith("`umoci stat --image ", e.Message, StringComparison.Ordinal);
        Assert.NotEqual(0, e.ExitCode);
        Assert.False(string.IsNullOrWhiteSpace(e.Stderr));
    }

    /// <summary>Regular files of a gzip layer; also asserts the tar ends with its two zero blocks (what umoci insert leaves out).</summary>
    private static Dictionary<string, string> Untar(byte[] gzip)
    {
        using var tar = new MemoryStream();
        using (var gz = new GZipStream(new MemoryStream(gzip), CompressionMode.Decompress))
        {
            gz.CopyTo(tar);
        }
        var bytes = tar.ToArray();
        Assert.Equal(0, bytes.Length % 512);
        Assert.True(bytes.Length >= 1024 && bytes.AsSpan(bytes.Length - 1024).IndexOfAnyExcept((byte)0) < 0, "the tar has no end-of-archive blocks");
        var files = new Dictionary<string, string>();
        tar.Position = 0;
        using var reader = new TarReader(tar);
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
            {
                using var content = new StreamReader(entry.DataStream!, Encoding.UTF8);
                files[entry.Name.TrimStart('.', '/')] = content.ReadToEnd();
            }
        }
        return files;
    }
}
