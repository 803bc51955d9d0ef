using System.Diagnostics;
using System.Runtime.Versioning;
using Trc.Oci.Build;
using Trc.Oci.Images;
using Trc.Oci.Layout;
using Trc.Oci.Pull;
using Trc.Oci.Registry;
using Trc.Oci.Store;

namespace Trc.Oci.Tests.Build;

[SupportedOSPlatform("linux")]
public sealed class DirectoryImageBuilderTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("trc-from-dir-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string P(string relative) => Path.Combine(_dir.FullName, relative);

    private string MakeTree()
    {
        var src = P("src");
        Directory.CreateDirectory(Path.Combine(src, "bin"));
        Directory.CreateDirectory(Path.Combine(src, "etc/app"));
        File.WriteAllText(Path.Combine(src, "bin/hello"), "#!/bin/sh\necho hello\n");
        File.SetUnixFileMode(Path.Combine(src, "bin/hello"), (UnixFileMode)0b111_101_101);
        File.WriteAllText(Path.Combine(src, "etc/app/config"), "key=value\n");
        File.SetUnixFileMode(Path.Combine(src, "etc/app/config"), (UnixFileMode)0b110_100_000);
        File.WriteAllBytes(Path.Combine(src, "empty"), []);
        File.CreateSymbolicLink(Path.Combine(src, "etc/link"), "app/config");
        File.CreateSymbolicLink(Path.Combine(src, "abs"), "/bin/hello");
        Link(Path.Combine(src, "bin/hello"), Path.Combine(src, "bin/hello-again"));
        Run("mkfifo", Path.Combine(src, "pipe"));
        return src;
    }

    private static void Link(string existing, string added) => Run("ln", existing, added);

    private static string Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)}: {stderr}");
        return stdout;
    }

    [Fact]
    public async Task An_image_made_from_a_directory_pulls_and_unpacks_to_the_same_tree()
    {
        var src = MakeTree();
        var layout = P("layout");
        var built = DirectoryImageBuilder.Build(src, layout, "v1", new DirectoryImageOptions
        {
            Entrypoint = ["/bin/hello"],
            Env = ["A=1"],
            WorkingDir = "/etc",
            User = "1000:1000",
        });
        Assert.Equal(["pipe"], built.Skipped);

        var store = new BlobStore(P("store"));
        var puller = new ImagePuller(store);
        using var client = new RegistryClient();
        var source = ImageSource.Parse($"oci:{layout}:v1", client);
        var pulled = await puller.PullAsync(source, null, null, CancellationToken.None);
        Assert.Equal(built.ManifestDigest, pulled.Resolved.ManifestDigest);
        Assert.Equal(["/bin/hello"], pulled.Config.Config!.Entrypoint);
        Assert.Equal("/etc", pulled.Config.Config.WorkingDir);
        Assert.Equal("1000:1000", pulled.Config.Config.User);
        Assert.Equal([built.DiffId], pulled.Config.RootFs.DiffIds);

        var root = P("root");
        var result = puller.Unpack(pulled, root, null, CancellationToken.None);
        Assert.Empty(result.Skipped);
        Assert.Equal("#!/bin/sh\necho hello\n", File.ReadAllText(Path.Combine(root, "bin/hello")));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(Path.Combine(root, "bin/hello")));
        Assert.Equal((UnixFileMode)0b110_100_000, File.GetUnixFileMode(Path.Combine(root, "etc/app/config")));
        Assert.Equal("app/config", new FileInfo(Path.Combine(root, "etc/link")).LinkTarget);
        Assert.Equal("/bin/hello", new FileInfo(Path.Combine(root, "abs")).LinkTarget);
        Assert.Equal(0, new FileInfo(Path.Combine(root, "empty")).Length);
        Assert.False(File.Exists(Path.Combine(root, "pipe")));
        // The hard link survived: writing one name changes the other.
        File.AppendAllText(Path.Combine(root, "bin/hello-again"), "#");
        Assert.EndsWith("#", File.ReadAllText(Path.Combine(root, "bin/hello")));
        Assert.All(result.Owners, o => Assert.Equal((0, 0), (o.Uid, o.Gid)));
    }

    [Fact]
    public void A_fixed_time_makes_the_build_reproducible_and_retagging_replaces_the_tag()
    {
        var src = MakeTree();
        var options = new DirectoryImageOptions { ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };
        var first = DirectoryImageBuilder.Build(src, P("a"), "t", options);
        var second = DirectoryImageBuilder.Build(src, P("b"), "t", options);
        Assert.Equal(first.ManifestDigest, second.ManifestDigest);

        File.WriteAllText(Path.Combine(src, "empty"), "no longer");
        var third = DirectoryImageBuilder.Build(src, P("a"), "t", options);
        Assert.NotEqual(first.ManifestDigest, third.ManifestDigest);
        var index = OciLayout.Open(P("a")).ReadIndex();
        Assert.Equal(third.ManifestDigest, Assert.Single(index.Manifests).Digest);
    }

    [Fact]
    public void Umoci_and_skopeo_read_the_layout_trc_writes()
    {
        var src = MakeTree();
        var layout = P("layout");
        var built = DirectoryImageBuilder.Build(src, layout, "v1", new DirectoryImageOptions { Cmd = ["/bin/hello"] });

        var inspect = Run("skopeo", "inspect", "--raw", $"oci:{layout}:v1");
        Assert.Equal(built.ManifestDigest, Digest.Compute("sha256", System.Text.Encoding.UTF8.GetBytes(inspect)));

        var bundle = P("bundle");
        Run("umoci", "unpack", "--rootless", "--image", $"{layout}:v1", bundle);
        Assert.Equal("key=value\n", File.ReadAllText(Path.Combine(bundle, "rootfs/etc/app/config")));
        Assert.Equal("app/config", new FileInfo(Path.Combine(bundle, "rootfs/etc/link")).LinkTarget);
    }

    [Fact]
    public void Bad_arguments_are_refused_by_name()
    {
        Assert.Throws<DirectoryNotFoundException>(() => DirectoryImageBuilder.Build(P("missing"), P("l"), "t"));
        Directory.CreateDirectory(P("src"));
        Assert.Contains("tag", Assert.Throws<ArgumentException>(() => DirectoryImageBuilder.Build(P("src"), P("l"), "bad tag!")).Message);
    }

    [Fact]
    public async Task A_layout_without_the_tag_or_with_a_tampered_blob_is_a_clear_error()
    {
        var src = MakeTree();
        var layout = P("layout");
        var built = DirectoryImageBuilder.Build(src, layout, "v1");
        using var client = new RegistryClient();
        var store = new BlobStore(P("store"));

        var missing = await Assert.ThrowsAsync<RegistryException>(() => new ImagePuller(store).PullAsync(ImageSource.Parse($"oci:{layout}:v2", client), null, null, CancellationToken.None));
        Assert.Equal(RegistryErrorKind.NotFound, missing.Kind);
        Assert.Contains("no image tagged \"v2\" (tags: v1)", missing.Message);

        // Flip one byte of the layer inside the layout: the copy into the store is refused.
        var layerPath = Path.Combine(layout, "blobs", "sha256", built.LayerDigest.Hex);
        var bytes = File.ReadAllBytes(layerPath);
        bytes[^10] ^= 0xff;
        File.WriteAllBytes(layerPath, bytes);
        var tampered = await Assert.ThrowsAsync<RegistryException>(() => new ImagePuller(store).PullAsync(ImageSource.Parse($"oci:{layout}:v1", client), null, null, CancellationToken.None));
        Assert.Equal(RegistryErrorKind.Verification, tampered.Kind);
        Assert.False(store.Contains(built.LayerDigest));
    }
}
