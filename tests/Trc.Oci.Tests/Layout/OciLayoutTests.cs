using System.Runtime.Versioning;
using Trc.Oci.Build;
using Trc.Oci.Images;
using Trc.Oci.Layout;
using Trc.Oci.Registry;

namespace Trc.Oci.Tests.Layout;

[SupportedOSPlatform("linux")]
public sealed class OciLayoutTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("trc-layout-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string P(string relative) => Path.Combine(_dir.FullName, relative);

    private (string Layout, BuiltImage Image) Built()
    {
        Directory.CreateDirectory(P("src"));
        File.WriteAllText(P("src/a"), "a");
        return (P("layout"), DirectoryImageBuilder.Build(P("src"), P("layout"), "v1"));
    }

    [Theory]
    [InlineData("not json", "not the layout marker JSON")]
    [InlineData("{}", "imageLayoutVersion must be \"1.0.0\"")]
    [InlineData("{\"imageLayoutVersion\": \"2.0.0\"}", "imageLayoutVersion must be \"1.0.0\"")]
    [InlineData("{\"imageLayoutVersion\": 1}", "not the layout marker JSON")]
    public void A_bad_layout_marker_is_refused(string marker, string expected)
    {
        Directory.CreateDirectory(P("l"));
        File.WriteAllText(P("l/oci-layout"), marker);
        var e = Assert.Throws<OciFormatException>(() => OciLayout.Open(P("l")));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("", "index.json")]
    [InlineData("{\"schemaVersion\": 2}", "index.json")]
    [InlineData("{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"x\", \"digest\": \"sha256:abc\", \"size\": 1}]}", "manifests[0].digest")]
    public void A_malformed_index_names_the_field(string index, string expected)
    {
        var (layout, _) = Built();
        File.WriteAllText(Path.Combine(layout, "index.json"), index);
        var e = Assert.Throws<OciFormatException>(() => OciLayout.Open(layout).ReadIndex());
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_manifest_blob_that_does_not_match_its_descriptor_is_a_verification_error()
    {
        var (layout, image) = Built();
        var opened = OciLayout.Open(layout);
        var entry = opened.Find("v1");
        File.AppendAllText(opened.Blobs.PathOf(image.ManifestDigest), " ");
        var e = Assert.Throws<RegistryException>(() => opened.ReadManifest(entry));
        Assert.Equal(RegistryErrorKind.Verification, e.Kind);
        Assert.Contains("not the", e.Message);
    }

    [Fact]
    public void Without_a_tag_the_only_image_is_found_and_with_several_one_must_be_named()
    {
        var (layout, image) = Built();
        Assert.Equal(image.ManifestDigest, OciLayout.Open(layout).Find(null).Digest);
        DirectoryImageBuilder.Build(P("src"), layout, "v2");
        var e = Assert.Throws<RegistryException>(() => OciLayout.Open(layout).Find(null));
        Assert.Contains("holds 2 images", e.Message);
        Assert.Contains("v1, v2", e.Message);
    }
}
