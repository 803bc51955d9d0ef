using System.Text;
using System.Text.Json;
using Trc.Testing.Registry;

namespace Trc.Cli.Tests.Commands;

/// <summary>One anonymous and one htpasswd registry for the class, with images pushed by skopeo.</summary>
public sealed class ImageCliWorld : IAsyncLifetime
{
    public LocalRegistry Open { get; private set; } = null!;

    public LocalRegistry Locked { get; private set; } = null!;

    public LayoutImage Image { get; private set; } = null!;

    public LayoutIndex Index { get; private set; } = null!;

    public static readonly Dictionary<string, byte[]> Files = new() { ["etc/hello"] = Encoding.UTF8.GetBytes("hi\n") };

    public async Task InitializeAsync()
    {
        Open = await LocalRegistry.StartAsync(RegistryAuth.Anonymous, CancellationToken.None);
        Locked = await LocalRegistry.StartAsync(RegistryAuth.Htpasswd("cli-user", "cli-Secret-9"), CancellationToken.None);
        Image = await Open.PushAsync("team/app", "v1", Files, CancellationToken.None);
        Index = await Open.PushMultiArchAsync("team/multi", "v1", CancellationToken.None);
        await Locked.PushAsync("team/private", "v1", Files, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await Open.DisposeAsync();
        await Locked.DisposeAsync();
    }
}

public sealed class ImageCommandsTests(ImageCliWorld world) : IClassFixture<ImageCliWorld>, IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("trc-image-cli-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string P(string relative) => Path.Combine(_dir.FullName, relative);

    private string Cache => P("cache");

    private string NoCredentials()
    {
        var path = P("no-auth.json");
        File.WriteAllText(path, "{}");
        return path;
    }

    private CliResult Image(params string[] args) => CliRunner.Run(["image", .. args]);

    [Fact]
    public void From_dir_writes_a_layout_that_pull_reads_back()
    {
        Directory.CreateDirectory(P("src/bin"));
        File.WriteAllText(P("src/bin/app"), "#!/bin/sh\n");
        var made = Image("from-dir", P("src"), "--out", $"oci:{P("layout")}:v1", "--entrypoint", "/bin/app", "--env", "PORT=8080", "--mtime", "1700000000", "--json");
        Assert.True(made.ExitCode == 0, made.ToString());
        using var json = JsonDocument.Parse(made.Stdout);
        var digest = json.RootElement.GetProperty("manifest_digest").GetString()!;

        var pulled = Image("pull", $"oci:{P("layout")}:v1", "--cache", Cache);
        Assert.True(pulled.ExitCode == 0, pulled.ToString());
        Assert.Equal($"oci:{P("layout")}:v1@{digest}\n", pulled.Stdout);
        Assert.Contains("layer sha256:", pulled.Stderr);
        Assert.Contains("done", pulled.Stderr);
        Assert.True(File.Exists(Path.Combine(Cache, "oci", "blobs", "sha256", digest[7..])));

        // The same tree and time give the same digest.
        var again = Image("from-dir", P("src"), "--out", $"oci:{P("layout2")}:v1", "--entrypoint", "/bin/app", "--env", "PORT=8080", "--mtime", "1700000000");
        Assert.StartsWith($"oci:{P("layout2")}:v1@{digest} ", again.Stdout);
    }

    [Theory]
    [InlineData(new[] { "--out", "layout:v1" }, "must start with \"oci:\"")]
    [InlineData(new[] { "--out", "oci:/tmp/x" }, "name the tag too")]
    [InlineData(new[] { "--out", "oci:/tmp/x:v1", "--env", "NOEQUALS" }, "--env NOEQUALS: write NAME=value")]
    public void From_dir_refuses_bad_options_by_name(string[] options, string expected)
    {
        Directory.CreateDirectory(P("src"));
        var result = Image(["from-dir", P("src"), .. options]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, result.Stderr);
    }

    [Fact]
    public void Pull_from_a_registry_prints_the_pinned_reference_and_caches_the_layers()
    {
        var reference = $"{world.Open.Host}/team/app:v1";
        var first = Image("pull", reference, "--cache", Cache, "--registry-auth", NoCredentials());
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal($"{world.Open.Host}/team/app@{world.Image.ManifestDigest}\n", first.Stdout);
        Assert.Contains(" done", first.Stderr);

        var second = Image("pull", reference, "--cache", Cache, "--registry-auth", NoCredentials());
        Assert.Equal(0, second.ExitCode);
        Assert.Contains(" cached", second.Stderr);
        Assert.DoesNotContain(" done", second.Stderr);
    }

    [Fact]
    public void Resolve_lists_every_platform_of_an_index()
    {
        var result = Image("resolve", $"{world.Open.Host}/team/multi:v1", "--cache", Cache, "--registry-auth", NoCredentials(), "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.Equal($"{world.Open.Host}/team/multi@{world.Index.IndexDigest}", json.RootElement.GetProperty("pinned").GetString());
        var platforms = json.RootElement.GetProperty("platform_digests");
        Assert.Equal(world.Index.Images[0].ManifestDigest, platforms.GetProperty("linux/amd64").GetString());
        Assert.Equal(world.Index.Images[1].ManifestDigest, platforms.GetProperty("linux/arm64/v8").GetString());
    }

    [Fact]
    public void A_private_registry_needs_the_credentials_file_and_the_password_is_never_printed()
    {
        var reference = $"{world.Locked.Host}/team/private:v1";
        var refused = Image("pull", reference, "--cache", Cache, "--registry-auth", NoCredentials());
        Assert.Equal(4, refused.ExitCode);
        Assert.Contains("requires a user name and password", refused.Stderr);

        var auth = P("auth.json");
        var encoded = Convert.ToBase64String(Encoding.UTF8.GetBytes("cli-user:cli-Secret-9"));
        File.WriteAllText(auth, "{\"auths\": {\"" + world.Locked.Host + "\": {\"auth\": \"" + encoded + "\"}}}");
        var pulled = Image("pull", reference, "--cache", Cache, "--registry-auth", auth);
        Assert.True(pulled.ExitCode == 0, pulled.ToString());
        Assert.DoesNotContain("cli-Secret-9", pulled.Stdout + pulled.Stderr);
    }

    [Theory]
    [InlineData("pull", "UPPER/Case:v1", 2, "")]
    [InlineData("pull", "oci:/nonexistent-layout-dir:v1", 1, "not an OCI image layout")]
    [InlineData("resolve", "127.0.0.1:1/team/app:v1", 5, "cannot reach 127.0.0.1:1")]
    public void Bad_references_fail_with_the_right_exit_code(string command, string reference, int exitCode, string expected)
    {
        var result = Image(command, reference, "--cache", Cache, "--registry-auth", NoCredentials());
        Assert.Equal(exitCode, result.ExitCode);
        Assert.Contains(expected, result.Stderr);
        Assert.Empty(result.Stdout);
    }

    [Fact]
    public void An_unknown_tag_is_exit_1_and_a_bad_platform_is_a_usage_error()
    {
        var unknown = Image("pull", $"{world.Open.Host}/team/app:nope", "--cache", Cache, "--registry-auth", NoCredentials());
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("not found", unknown.Stderr);

        var platform = Image("pull", $"{world.Open.Host}/team/app:v1", "--cache", Cache, "--platform", "linux", "--registry-auth", NoCredentials());
        Assert.Equal(2, platform.ExitCode);
        Assert.Contains("--platform:", platform.Stderr);

        var missing = Image("pull", $"{world.Open.Host}/team/multi:v1", "--cache", Cache, "--platform", "linux/s390x", "--registry-auth", NoCredentials());
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("linux/arm64/v8", missing.Stderr);
    }

    [Fact]
    public void Rootfs_builds_a_clean_ext4_disk_once_and_gc_removes_it_when_unused()
    {
        var first = Image("rootfs", $"{world.Open.Host}/team/app:v1", "--cache", Cache, "--registry-auth", NoCredentials(), "--json");
        Assert.True(first.ExitCode == 0, first.ToString());
        using var json = JsonDocument.Parse(first.Stdout);
        var disk = json.RootElement.GetProperty("disk").GetString()!;
        Assert.Equal(world.Image.ManifestDigest, json.RootElement.GetProperty("manifest_digest").GetString());
        Assert.EndsWith(".ext4", disk);
        Assert.Contains("mkfs.ext4", first.Stderr);
        var fsck = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("e2fsck", ["-fn", disk]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        fsck.WaitForExit();
        Assert.Equal(0, fsck.ExitCode);
        var config = File.ReadAllText(json.RootElement.GetProperty("config").GetString()!);
        Assert.Contains("\"manifest_digest\"", config);

        // Cached: the second run neither downloads nor formats.
        var second = Image("rootfs", $"{world.Open.Host}/team/app:v1", "--cache", Cache, "--registry-auth", NoCredentials());
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(disk + "\n", second.Stdout);
        Assert.DoesNotContain("mkfs.ext4", second.Stderr);

        var kept = Image("gc", "--cache", Cache, "--unused-for", "1d");
        Assert.Equal(0, kept.ExitCode);
        Assert.StartsWith("Deleted 0 root disks", kept.Stdout);
        Assert.True(File.Exists(disk));

        var collected = Image("gc", "--cache", Cache, "--unused-for", "0m");
        Assert.Equal(0, collected.ExitCode);
        Assert.StartsWith("Deleted 1 root disk ", collected.Stdout);
        Assert.False(File.Exists(disk));
        Assert.Empty(Directory.GetFiles(Path.Combine(Cache, "oci", "blobs"), "*", SearchOption.AllDirectories));

        var bad = Image("gc", "--cache", Cache, "--unused-for", "soon");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--unused-for soon", bad.Stderr);
    }
}
