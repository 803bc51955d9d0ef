using System.Runtime.InteropServices;
using Trc.Oci.Images;

namespace Trc.Oci.Tests.Images;

public sealed class PlatformMatcherTests
{
    private static readonly Digest Some = Digest.Compute(Digest.Sha256, []);

    private static Descriptor Entry(string? platform, string? referenceType = null)
    {
        Platform? p = null;
        if (platform is not null)
        {
            var parts = platform.Split('/');
            p = new Platform { Os = parts[0], Architecture = parts[1], Variant = parts.Length > 2 ? parts[2] : null };
        }
        return new Descriptor
        {
            MediaType = MediaTypes.OciManifest,
            Digest = Some,
            Size = 1,
            Platform = p,
            Annotations = referenceType is null ? null : new Dictionary<string, string> { [PlatformMatcher.ReferenceTypeAnnotation] = referenceType },
        };
    }

    private static ImageIndex IndexOf(params Descriptor[] entries) => new() { Manifests = entries };

    [Theory]
    // wanted os/arch/variant, index entries, expected index of the chosen entry
    [InlineData("linux", "amd64", null, new[] { "linux/arm64/v8", "linux/amd64" }, 1)]
    [InlineData("linux", "arm64", null, new[] { "linux/amd64", "linux/arm64/v8" }, 1)]
    [InlineData("linux", "arm64", null, new[] { "linux/amd64", "linux/arm64" }, 1)]
    [InlineData("linux", "arm64", "v8", new[] { "linux/arm64" }, 0)]
    [InlineData("linux", "arm", null, new[] { "linux/arm/v6", "linux/arm/v7" }, 1)]
    [InlineData("linux", "arm", null, new[] { "linux/arm/v5", "linux/arm/v6" }, 1)]
    [InlineData("linux", "arm", "v7", new[] { "linux/arm" }, 0)]
    [InlineData("linux", "arm", "7", new[] { "linux/arm/v6", "linux/arm/v7" }, 1)]
    [InlineData("linux", "amd64", "v3", new[] { "linux/amd64", "linux/amd64/v2" }, 1)]
    [InlineData("linux", "amd64", "v3", new[] { "linux/amd64/v3", "linux/amd64/v2" }, 0)]
    [InlineData("linux", "x86_64", null, new[] { "linux/amd64" }, 0)]
    [InlineData("linux", "aarch64", null, new[] { "linux/arm64" }, 0)]
    [InlineData("linux", "amd64", null, new[] { "linux/amd64", "linux/amd64" }, 0)]
    public void The_best_compatible_entry_is_selected(string os, string architecture, string? variant, string[] platforms, int expected)
    {
        var index = IndexOf([.. platforms.Select(p => Entry(p))]);
        Assert.Same(index.Manifests[expected], PlatformMatcher.Select(index, os, architecture, variant));
    }

    [Fact]
    public void Entries_without_platform_and_attestations_are_skipped()
    {
        var index = IndexOf(
            Entry(null),
            Entry("unknown/unknown"),
            Entry("linux/amd64", PlatformMatcher.AttestationManifest),
            Entry("linux/amd64"));
        Assert.Same(index.Manifests[3], PlatformMatcher.Select(index, "linux", "amd64", null));
        Assert.Equal(["linux/amd64"], PlatformMatcher.Available(index));
    }

    [Theory]
    [InlineData("linux", "arm", "v6", new[] { "linux/arm/v7" })]
    [InlineData("linux", "arm64", null, new[] { "linux/arm/v7", "linux/amd64" })]
    [InlineData("windows", "amd64", null, new[] { "linux/amd64" })]
    [InlineData("linux", "amd64", null, new[] { "linux/amd64/v2" })]
    public void No_match_is_an_error_listing_the_available_platforms(string os, string architecture, string? variant, string[] platforms)
    {
        var index = IndexOf([.. platforms.Select(p => Entry(p))]);
        var thrown = Assert.Throws<PlatformNotFoundException>(() => PlatformMatcher.Select(index, os, architecture, variant));
        Assert.Contains("available: " + string.Join(", ", platforms), thrown.Message, StringComparison.Ordinal);
        Assert.Equal(platforms, thrown.Available);
    }

    [Fact]
    public void An_index_of_only_attestations_says_it_lists_no_platforms()
    {
        var index = IndexOf(Entry("unknown/unknown", PlatformMatcher.AttestationManifest));
        Assert.False(PlatformMatcher.TrySelect(index, "linux", "amd64", null, out _, out var error));
        Assert.Contains("lists no platforms", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Architecture.X64, "amd64", null)]
    [InlineData(Architecture.Arm64, "arm64", null)]
    [InlineData(Architecture.Arm, "arm", "v7")]
    [InlineData(Architecture.X86, "386", null)]
    public void Dotnet_architectures_map_to_oci_names(Architecture architecture, string expected, string? variant) =>
        Assert.Equal((expected, variant), PlatformMatcher.ToOci(architecture));

    [Fact]
    public void The_host_architecture_has_an_oci_name() =>
        Assert.NotEmpty(PlatformMatcher.Host().Architecture);
}
