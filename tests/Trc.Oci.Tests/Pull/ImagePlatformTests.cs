using Trc.Oci.Pull;

namespace Trc.Oci.Tests.Pull;

public sealed class ImagePlatformTests
{
    [Theory]
    [InlineData("linux/amd64", "linux", "amd64", null)]
    [InlineData("linux/arm64/v8", "linux", "arm64", "v8")]
    [InlineData("linux/x86_64", "linux", "x86_64", null)]
    public void Os_arch_and_variant_parse(string text, string os, string architecture, string? variant)
    {
        Assert.Equal(new ImagePlatform(os, architecture, variant), ImagePlatform.Parse(text));
        Assert.Equal(text, ImagePlatform.Parse(text).ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("linux")]
    [InlineData("linux/")]
    [InlineData("/amd64")]
    [InlineData("linux/arm64/v8/extra")]
    [InlineData("linux/amd 64")]
    [InlineData("linux/amd64\n")]
    [InlineData("linux/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void Anything_else_is_refused_with_the_expected_form(string text)
    {
        var e = Assert.Throws<FormatException>(() => ImagePlatform.Parse(text));
        Assert.Contains("expected os/architecture[/variant]", e.Message);
    }

    [Fact]
    public void A_huge_platform_is_shortened_in_the_message()
    {
        var e = Assert.Throws<FormatException>(() => ImagePlatform.Parse(new string('x', 100_000)));
        Assert.True(e.Message.Length < 400, e.Message.Length.ToString());
    }

    [Fact]
    public void The_host_is_linux()
    {
        Assert.Equal("linux", ImagePlatform.Host.Os);
    }
}
