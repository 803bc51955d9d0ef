using FsCheck;
using FsCheck.Fluent;
using Trc.Oci.Images;

namespace Trc.Oci.Tests.Images;

public sealed class ImageReferenceTests
{
    private const string Sha = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    [Theory]
    [InlineData("nginx", "docker.io", "library/nginx", null, false, "docker.io/library/nginx")]
    [InlineData("nginx:1.25", "docker.io", "library/nginx", "1.25", false, "docker.io/library/nginx:1.25")]
    [InlineData("library/nginx@" + Sha, "docker.io", "library/nginx", null, true, "docker.io/library/nginx@" + Sha)]
    [InlineData("registry.example.com:5000/team/app:tag@" + Sha, "registry.example.com:5000", "team/app", "tag", true, "registry.example.com:5000/team/app:tag@" + Sha)]
    [InlineData("127.0.0.1:5000/app", "127.0.0.1:5000", "app", null, false, "127.0.0.1:5000/app")]
    [InlineData("[::1]:5000/app:v1", "[::1]:5000", "app", "v1", false, "[::1]:5000/app:v1")]
    [InlineData("[2001:db8::1]/a/b", "[2001:db8::1]", "a/b", null, false, "[2001:db8::1]/a/b")]
    [InlineData("localhost/app", "localhost", "app", null, false, "localhost/app")]
    [InlineData("localhost:5000/app:latest", "localhost:5000", "app", "latest", false, "localhost:5000/app:latest")]
    [InlineData("team/app", "docker.io", "team/app", null, false, "docker.io/team/app")]
    [InlineData("docker.io/nginx", "docker.io", "library/nginx", null, false, "docker.io/library/nginx")]
    [InlineData("index.docker.io/library/nginx", "docker.io", "library/nginx", null, false, "docker.io/library/nginx")]
    [InlineData("ghcr.io/a/b/c/d:x", "ghcr.io", "a/b/c/d", "x", false, "ghcr.io/a/b/c/d:x")]
    [InlineData("Registry/app", "Registry", "app", null, false, "Registry/app")]
    [InlineData("a__b/c.d/e-f/g---h:_T.a-g", "docker.io", "a__b/c.d/e-f/g---h", "_T.a-g", false, "docker.io/a__b/c.d/e-f/g---h:_T.a-g")]
    [InlineData("localhost:5000", "docker.io", "library/localhost", "5000", false, "docker.io/library/localhost:5000")]
    public void A_valid_reference_parses_into_its_parts(string text, string registry, string repository, string? tag, bool hasDigest, string canonical)
    {
        var reference = ImageReference.Parse(text);
        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(hasDigest, reference.Digest is not null);
        Assert.Equal(canonical, reference.ToString());
        Assert.Equal(reference, ImageReference.Parse(reference.ToString()));
    }

    [Theory]
    [InlineData("", "reference is empty")]
    [InlineData("nginx:-bad", "tag \"-bad\": must start with a letter, digit or underscore")]
    [InlineData("nginx:", "tag is empty")]
    [InlineData("nginx:a/b", "port \"a\" must be digits")]
    [InlineData("nginx:a+b", "tag \"a+b\": '+' is not allowed")]
    [InlineData("NGINX", "must be lowercase")]
    [InlineData("example.com/Team/app", "component \"Team\" must be lowercase")]
    [InlineData("example.com/team//app", "component \"\" is empty")]
    [InlineData("example.com/team/app-", "must end with a lowercase letter or digit")]
    [InlineData("example.com/-app", "must start with a lowercase letter or digit")]
    [InlineData("example.com/a..b", "separator that is not followed")]
    [InlineData("example.com/a___b", "separator that is not followed")]
    [InlineData("example.com/", "repository is empty")]
    [InlineData("nginx@sha256:abc", "sha256 needs 64 hex digits")]
    [InlineData("nginx@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm")]
    [InlineData("-example.com/app", "host component \"-example\"")]
    [InlineData("example.com:port/app", "port \"port\" must be digits")]
    [InlineData("example.com:/app", "port \"\" must be digits")]
    [InlineData("[::1/app", "without a closing")]
    [InlineData("[zz::1]:5000/app", "is not an IPv6 address")]
    [InlineData("[::1]x/app", "only \":port\"")]
    [InlineData("ex ample.com/app", "host component")]
    [InlineData("@" + Sha, "name is empty")]
    public void An_invalid_reference_is_refused_naming_the_offending_part(string text, string expected)
    {
        Assert.False(ImageReference.TryParse(text, out var reference, out var error));
        Assert.Null(reference);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => ImageReference.Parse(text));
    }

    [Fact]
    public void A_tag_of_129_characters_is_too_long_and_128_is_not()
    {
        Assert.True(ImageReference.TryParse("app:" + new string('a', 128), out _, out _));
        Assert.False(ImageReference.TryParse("app:" + new string('a', 129), out _, out var error));
        Assert.Contains("longer than 128", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_normalised_name_over_255_characters_is_refused()
    {
        // docker.io/library/ + 237 = 255.
        Assert.True(ImageReference.TryParse(new string('a', 237), out _, out _));
        Assert.False(ImageReference.TryParse(new string('a', 238), out _, out var error));
        Assert.Contains("longer than 255", error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_manifest_reference_is_the_digest_else_the_tag_else_latest()
    {
        Assert.Equal("latest", ImageReference.Parse("nginx").ManifestReference);
        Assert.Equal("1.25", ImageReference.Parse("nginx:1.25").ManifestReference);
        Assert.Equal(Sha, ImageReference.Parse("nginx:1.25@" + Sha).ManifestReference);
    }

    [Theory]
    [InlineData("oci:/var/images/app", "/var/images/app", null)]
    [InlineData("oci:layout:v1", "layout", "v1")]
    [InlineData("oci:./rel/dir:org/app:1.0", "./rel/dir", "org/app:1.0")]
    public void A_layout_reference_parses_into_directory_and_tag(string text, string directory, string? tag)
    {
        Assert.True(OciLayoutReference.HasScheme(text));
        var reference = OciLayoutReference.Parse(text);
        Assert.Equal(directory, reference.Directory);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(text, reference.ToString());
    }

    [Theory]
    [InlineData("nginx", "must start with \"oci:\"")]
    [InlineData("oci:", "directory is empty")]
    [InlineData("oci::v1", "directory is empty")]
    [InlineData("oci:dir:", "tag \"\" is empty")]
    [InlineData("oci:dir:-v1", "tag \"-v1\"")]
    [InlineData("oci:dir:a//b", "tag \"a//b\"")]
    public void An_invalid_layout_reference_is_refused(string text, string expected)
    {
        Assert.False(OciLayoutReference.TryParse(text, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    private static Gen<string> Word(string first, string rest, int maxRest) =>
        from f in Gen.Elements(first.ToCharArray())
        from n in Gen.Choose(0, maxRest)
        from r in Gen.ArrayOf(Gen.Elements(rest.ToCharArray()), n)
        select f + new string(r);

    private static readonly Gen<string> AlphaNumeric = Word("abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789", 5);

    private static readonly Gen<string> PathComponent =
        from parts in Gen.Choose(1, 3).SelectMany(n => Gen.ArrayOf(AlphaNumeric, n))
        from separators in Gen.ArrayOf(Gen.Elements(".", "_", "__", "-", "--", "---"), parts.Length)
        select string.Concat(parts.Select((p, i) => i == 0 ? p : separators[i] + p));

    private static readonly Gen<string?> Registries = Gen.Elements<string?>(
        null, "docker.io", "index.docker.io", "localhost", "localhost:5000", "registry.example.com",
        "registry.example.com:5000", "127.0.0.1:5000", "[::1]:5000", "[2001:db8::1]", "Quay.IO", "a-b.c");

    private static readonly Gen<string?> Tags = Gen.OneOf(
        Gen.Constant<string?>(null),
        Word("abcXYZ019_", "abcXYZ019_.-", 20).Select(t => (string?)t));

    private static readonly Gen<string?> Digests = Gen.OneOf(
        Gen.Constant<string?>(null),
        Gen.ArrayOf(Gen.Elements("0123456789abcdef".ToCharArray()), 64).Select(h => (string?)("sha256:" + new string(h))),
        Gen.ArrayOf(Gen.Elements("0123456789abcdef".ToCharArray()), 128).Select(h => (string?)("sha512:" + new string(h))));

    private static readonly Gen<string> References =
        from registry in Registries
        from components in Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(PathComponent, n))
        from tag in Tags
        from digest in Digests
        // Without a registry, a first component with a '.' would be read as one, as distribution does.
        select (registry is null ? components[0].Replace('.', '_') + (components.Length > 1 ? "/" : "") : registry + "/") + string.Join('/', components.Skip(registry is null ? 1 : 0))
            + (tag is null ? "" : ":" + tag) + (digest is null ? "" : "@" + digest);

    [Fact]
    public void Parsing_the_canonical_form_of_a_valid_reference_gives_the_same_reference()
    {
        var property = Prop.ForAll(References.ToArbitrary(), text =>
        {
            if (!ImageReference.TryParse(text, out var reference, out var error))
            {
                return false.ToProperty().Label($"{text}: {error}");
            }
            var again = ImageReference.Parse(reference.ToString());
            return (again.Equals(reference) && again.ToString() == reference.ToString()).ToProperty().Label(text);
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2000), property);
    }

    [Fact]
    public void Arbitrary_text_never_throws_from_try_parse()
    {
        var property = Prop.ForAll(ArbMap.Default.ArbFor<string>(), text =>
        {
            ImageReference.TryParse(text, out _, out _);
            OciLayoutReference.TryParse(text, out _, out _);
            Digest.TryParse(text, out _, out _);
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(2000), property);
    }
}
