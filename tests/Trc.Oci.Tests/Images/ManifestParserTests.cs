using System.Text;
using System.Text.Json;
using Trc.Oci.Images;

namespace Trc.Oci.Tests.Images;

public sealed class ManifestParserTests
{
    private const string D1 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    private const string D2 = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    private const string Manifest = $$"""
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": "{{D1}}", "size": 7023 },
          "layers": [
            { "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "{{D2}}", "size": 32654 },
            { "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "{{D1}}", "size": 0,
              "urls": ["https://example.com/l"], "annotations": { "org.example": "x" }, "data": "e30=" }
          ],
          "annotations": { "com.example.key": "value" },
          "unknownField": { "deep": [1, 2, {"x": null}] }
        }
        """;

    private const string Index = $$"""
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.index.v1+json",
          "manifests": [
            { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{{D1}}", "size": 7143,
              "platform": { "architecture": "arm64", "os": "linux", "variant": "v8", "os.version": "1", "os.features": ["a"] } },
            { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{{D2}}", "size": 7682,
              "platform": { "architecture": "amd64", "os": "linux" } }
          ]
        }
        """;

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    private static OciFormatException Refused(string body, string? contentType = null) =>
        Assert.Throws<OciFormatException>(() => ManifestParser.Parse(Bytes(body), contentType));

    [Fact]
    public void A_manifest_parses_with_all_its_fields()
    {
        var manifest = Assert.IsType<ImageManifest>(ManifestParser.Parse(Bytes(Manifest), null));
        Assert.Equal(2, manifest.SchemaVersion);
        Assert.Equal(MediaTypes.OciManifest, manifest.MediaType);
        Assert.Equal(D1, manifest.Config.Digest.ToString());
        Assert.Equal(7023, manifest.Config.Size);
        Assert.Equal(2, manifest.Layers.Count);
        Assert.Equal(MediaTypes.OciLayerTarZstd, manifest.Layers[1].MediaType);
        Assert.Equal(["https://example.com/l"], manifest.Layers[1].Urls!);
        Assert.Equal("x", manifest.Layers[1].Annotations!["org.example"]);
        Assert.Equal("value", manifest.Annotations!["com.example.key"]);
    }

    [Fact]
    public void An_index_parses_with_its_platforms()
    {
        var index = Assert.IsType<ImageIndex>(ManifestParser.Parse(Bytes(Index), null));
        Assert.Equal(2, index.Manifests.Count);
        var platform = index.Manifests[0].Platform!;
        Assert.Equal(("linux", "arm64", "v8", "1"), (platform.Os, platform.Architecture, platform.Variant, platform.OsVersion));
        Assert.Equal(["a"], platform.OsFeatures!);
        Assert.Equal("linux/amd64", index.Manifests[1].Platform!.ToString());
    }

    [Theory]
    [InlineData(MediaTypes.DockerManifestList, typeof(ImageIndex))]
    [InlineData(MediaTypes.OciIndex + "; charset=utf-8", typeof(ImageIndex))]
    [InlineData(MediaTypes.DockerManifest, typeof(ImageManifest))]
    public void Without_a_media_type_in_the_body_the_content_type_decides(string contentType, Type expected)
    {
        var body = expected == typeof(ImageIndex)
            ? $$"""{"schemaVersion":2,"manifests":[]}"""
            : $$"""{"schemaVersion":2,"config":{"mediaType":"a","digest":"{{D1}}","size":1},"layers":[]}""";
        Assert.IsType(expected, ManifestParser.Parse(Bytes(body), contentType));
    }

    [Fact]
    public void Without_media_type_or_content_type_the_fields_decide()
    {
        Assert.IsType<ImageIndex>(ManifestParser.Parse(Bytes("""{"schemaVersion":2,"manifests":[]}"""), "application/json"));
        Assert.IsType<ImageManifest>(ManifestParser.Parse(
            Bytes($$"""{"schemaVersion":2,"config":{"mediaType":"a","digest":"{{D1}}","size":1},"layers":[]}"""), null));
    }

    [Fact]
    public void The_body_media_type_wins_over_the_content_type() =>
        Assert.IsType<ImageIndex>(ManifestParser.Parse(Bytes(Index), MediaTypes.OciManifest));

    [Theory]
    [InlineData("""{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"D1","size":1}, {"mediaType":"a","digest":"sha256:ABC","size":1}]}""", "manifests[1].digest: ")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":1},"layers":[{"mediaType":"a","digest":"D1","size":1},{"mediaType":"a","digest":"D1","size":1},{"mediaType":"a","size":1}]}""", "layers[2].digest: is required")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":-1},"layers":[]}""", "config.size: must be a whole number")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":1.5},"layers":[]}""", "config.size: must be a whole number")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":1e400},"layers":[]}""", "config.size: must be a whole number")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":99999999999999999999999},"layers":[]}""", "config.size: must be a whole number")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":"1"},"layers":[]}""", "config.size: must be a whole number")]
    [InlineData("""{"schemaVersion":2,"layers":[]}""", "config: is required")]
    [InlineData("""{"schemaVersion":2,"config":null,"layers":[]}""", "config: is required")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"D1","size":1}}""", "layers: is required")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":1},"layers":{}}""", "layers: must be an array, not an object")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":1},"layers":[null]}""", "layers[0]: must be a descriptor object, not null")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":7,"digest":"D1","size":1},"layers":[]}""", "config.mediaType: must be a string, not a number")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":1,"urls":[1]},"layers":[]}""", "config.urls[0]: must be a string")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"a","digest":"D1","size":1},"layers":[],"annotations":{"a.b":1}}""", "annotations[\"a.b\"]: must be a string")]
    [InlineData("""{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"D1","size":1,"platform":{"os":"linux"}}]}""", "manifests[0].platform.architecture: is required")]
    [InlineData("""{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"D1","size":1,"platform":{"os":"linux","architecture":"amd64","os.version":2}}]}""", "manifests[0].platform[\"os.version\"]: must be a string")]
    [InlineData("""{"schemaVersion":1,"manifests":[]}""", "schemaVersion: 1 is Docker schema 1")]
    [InlineData("""{"schemaVersion":3,"manifests":[]}""", "schemaVersion: 3 is not supported")]
    [InlineData("""{"schemaVersion":"2","manifests":[]}""", "schemaVersion: must be the number 2")]
    [InlineData("""{"manifests":[]}""", "schemaVersion: is required")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}""", "mediaType: \"application/vnd.oci.artifact.manifest.v1+json\" is not a manifest or index")]
    [InlineData("""{"schemaVersion":2,"mediaType":5}""", "mediaType: must be a string")]
    [InlineData("""{"schemaVersion":2}""", "neither \"manifests\" nor \"layers\"")]
    [InlineData("""{"schemaVersion":2,"manifests":[],"layers":[]}""", "both \"manifests\" and \"layers\"")]
    [InlineData("""[]""", "must be a JSON object, not an array")]
    [InlineData("""null""", "must be a JSON object, not null")]
    [InlineData("""{"schemaVersion":2,"schemaVersion":2,"manifests":[]}""", "not valid JSON")]
    [InlineData("""{"schemaVersion":2,"manifests":[]} x""", "not valid JSON")]
    [InlineData("""{"schemaVersion":2,"manifests":[],}""", "not valid JSON")]
    [InlineData("""{"schemaVersion":2, /* c */ "manifests":[]}""", "not valid JSON")]
    [InlineData("", "not valid JSON")]
    public void An_invalid_document_is_refused_naming_the_json_path(string body, string expected)
    {
        var thrown = Refused(body.Replace("\"D1\"", $"\"{D1}\"", StringComparison.Ordinal));
        Assert.Contains(expected, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deeply_nested_json_is_refused()
    {
        var body = """{"schemaVersion":2,"manifests":[],"x":""" + new string('[', 10_000) + new string(']', 10_000) + "}";
        Assert.Contains("not valid JSON", Refused(body).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_body_over_4_MiB_is_refused_before_parsing()
    {
        var body = new byte[ManifestParser.MaxManifestBytes + 1];
        var thrown = Assert.Throws<OciFormatException>(() => ManifestParser.Parse(body, null));
        Assert.Contains("limit", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_in_a_string_is_refused()
    {
        byte[] body = [.. Bytes("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"a\":\""), 0xC3, 0x28, .. Bytes("\"}}")];
        Assert.Throws<OciFormatException>(() => ManifestParser.Parse(body, null));
        byte[] key = [.. Bytes("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\""), 0xFF, .. Bytes("\":\"a\"}}")];
        Assert.Throws<OciFormatException>(() => ManifestParser.Parse(key, null));
    }

    [Theory]
    [InlineData(Manifest)]
    [InlineData(Index)]
    public void A_valid_document_truncated_at_every_byte_is_refused(string document)
    {
        var body = Bytes(document);
        for (var length = 0; length < body.Length; length++)
        {
            // Some prefixes are themselves valid JSON only if they end on the closing brace; none here does.
            Assert.Throws<OciFormatException>(() => ManifestParser.Parse(body.AsSpan(0, length), null));
        }
    }

    [Fact]
    public void Every_single_byte_corruption_gives_a_document_or_a_format_error()
    {
        var body = Bytes(Manifest);
        byte[] replacements = [0x00, (byte)'"', (byte)'{', (byte)']', (byte)'-', (byte)'A', 0xFF];
        foreach (var replacement in replacements)
        {
            for (var i = 0; i < body.Length; i++)
            {
                var corrupt = (byte[])body.Clone();
                corrupt[i] = replacement;
                try
                {
                    ManifestParser.Parse(corrupt, null);
                }
                catch (OciFormatException)
                {
                }
            }
        }
    }

    [Fact]
    public void A_manifest_written_with_the_json_context_parses_back_equal()
    {
        var original = Assert.IsType<ImageManifest>(ManifestParser.Parse(Bytes(Manifest), null));
        var written = JsonSerializer.SerializeToUtf8Bytes(original, OciJsonContext.Default.ImageManifest);
        var again = Assert.IsType<ImageManifest>(ManifestParser.Parse(written, null));
        Assert.Equal(original.Config, again.Config with { });
        Assert.Equal(original.Layers.Select(l => (l.MediaType, l.Digest, l.Size)), again.Layers.Select(l => (l.MediaType, l.Digest, l.Size)));
    }

    private const string Config = $$"""
        {
          "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
          "config": { "Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g", "daemon off;"], "Env": ["PATH=/usr/bin"],
                      "WorkingDir": "/", "User": "101:101", "ExposedPorts": { "80/tcp": {} }, "Labels": null },
          "rootfs": { "type": "layers", "diff_ids": ["{{D1}}", "{{D2}}"] },
          "history": []
        }
        """;

    [Fact]
    public void An_image_config_parses_with_its_run_defaults()
    {
        var config = ManifestParser.ParseConfig(Bytes(Config));
        Assert.Equal(("linux", "amd64"), (config.Os, config.Architecture));
        Assert.Equal(["/docker-entrypoint.sh"], config.Config!.Entrypoint!);
        Assert.Equal(["nginx", "-g", "daemon off;"], config.Config.Cmd!);
        Assert.Equal(["80/tcp"], config.Config.ExposedPorts!);
        Assert.Equal("101:101", config.Config.User);
        Assert.Equal([Digest.Parse(D1), Digest.Parse(D2)], config.RootFs.DiffIds);
    }

    [Fact]
    public void A_config_with_null_run_defaults_parses()
    {
        var config = ManifestParser.ParseConfig(Bytes("""{"architecture":"arm64","os":"linux","config":{"Entrypoint":null,"Cmd":null},"rootfs":{"type":"layers","diff_ids":[]}}"""));
        Assert.Null(config.Config!.Entrypoint);
        Assert.Empty(config.RootFs.DiffIds);
    }

    [Theory]
    [InlineData("""{"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}""", "architecture: is required")]
    [InlineData("""{"architecture":"amd64","os":"linux"}""", "rootfs: is required")]
    [InlineData("""{"architecture":"amd64","os":"linux","rootfs":{"type":"foo","diff_ids":[]}}""", "rootfs.type: must be \"layers\"")]
    [InlineData("""{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["x"]}}""", "rootfs.diff_ids[0]: ")]
    [InlineData("""{"architecture":"amd64","os":"linux","config":{"Cmd":"sh"},"rootfs":{"type":"layers","diff_ids":[]}}""", "config.Cmd: must be an array of strings")]
    public void An_invalid_config_is_refused_naming_the_json_path(string body, string expected)
    {
        var thrown = Assert.Throws<OciFormatException>(() => ManifestParser.ParseConfig(Bytes(body)));
        Assert.Contains(expected, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_config_truncated_at_every_byte_is_refused()
    {
        var body = Bytes(Config);
        for (var length = 0; length < body.Length; length++)
        {
            Assert.Throws<OciFormatException>(() => ManifestParser.ParseConfig(body.AsSpan(0, length)));
        }
    }
}
