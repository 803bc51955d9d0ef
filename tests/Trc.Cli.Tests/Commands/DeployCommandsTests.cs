using System.Text.Json;
using Trc.Testing.Registry;

namespace Trc.Cli.Tests.Commands;

public sealed class DeployCommandsTests(CliServerFixture server) : IClassFixture<CliServerFixture>
{
    private const string Image = "registry.example.com/shop@" + CliSession.Digest;

    private static string Manifest(string hostname) => $$"""
        app = "shop"

        [processes.web]
        ports = [8443]
        memory = "256Mi"

        [processes.worker]
        memory = "128Mi"

        [[routes]]
        hostname = "{{hostname}}"
        process = "web"
        backend_port = 8443

        [[volumes]]
        name = "data"
        size = "2Gi"
        process = "web"
        backup_enabled = false
        """;

    [Fact]
    public async Task Deploy_from_a_manifest_creates_its_route_and_volume_with_release_1()
    {
        var org = CliServerFixture.NewName();
        using var user = await CliSession.NewOrgAsync(server, org);
        var hostname = CliServerFixture.NewName("h") + ".example.com";
        user.WriteFile("trc.toml", Manifest(hostname));
        await user.OkAsync("apps", "create", "shop");
        // No --app: it comes from ./trc.toml.
        await user.OkAsync("envs", "create", "prod");

        var deploy = await user.OkAsync("deploy", "--detach", "--env", "prod", "--image", Image);

        Assert.Contains($"Deployed release 1 of shop to {org}/shop/prod", deploy.Stdout);
        Assert.Contains("digest: " + CliSession.Digest, deploy.Stdout);
        Assert.Contains($"  route:  {hostname}:443 -> web:8443\n", deploy.Stdout);
        Assert.Contains("  volume: data (2Gi, process web)\n", deploy.Stdout);
        Assert.Empty(deploy.Stderr);

        var routes = await user.OkAsync("routes", "--env", "prod", "--json");
        using (var json = JsonDocument.Parse(routes.Stdout))
        {
            var route = Assert.Single(json.RootElement.GetProperty("items").EnumerateArray());
            Assert.Equal(hostname, route.GetProperty("hostname").GetString());
        }
        var volumes = await user.OkAsync("volumes", "--env", "prod");
        Assert.Matches(@"data\s+2Gi\s+web\s+no\s+/mnt/volumes/data", volumes.Stdout);

        // The second deploy finds both in place and only records the release.
        var again = await user.OkAsync("deploy", "--detach", "--env", "prod", "--image", "registry.example.com/shop@sha256:" + new string('b', 64));
        Assert.Contains("Deployed release 2", again.Stdout);
        Assert.Single((await user.OkAsync("routes", "--env", "prod")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1));

        var releases = await user.OkAsync("releases", "--env", "prod");
        var lines = releases.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("RELEASE", lines[0]);
        Assert.Matches(@"^2\s+deployed\s+sha256:bbbbbbbbbbbb\s+384Mi", lines[1]);
        Assert.Matches(@"^1\s+-\s+sha256:aaaaaaaaaaaa", lines[2]);
        var show = await user.OkAsync("releases", "show", "1", "--env", "prod");
        Assert.Matches(@"deployed:\s+no", show.Stdout);
        Assert.Contains(Image, show.Stdout);
    }

    [Fact]
    public async Task Deploy_with_json_prints_only_the_release_on_stdout()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var manifest = user.WriteFile("deploy.toml", Manifest(CliServerFixture.NewName("h") + ".example.com"));

        var deploy = await user.OkAsync("deploy", "--detach", "--image", Image, "--manifest", "deploy.toml", "--json");

        using var json = JsonDocument.Parse(deploy.Stdout);
        Assert.Equal(1, json.RootElement.GetProperty("number").GetInt32());
        Assert.Equal(CliSession.Digest, json.RootElement.GetProperty("image_digest").GetString());
        Assert.True(json.RootElement.GetProperty("deployed").GetBoolean());
        Assert.Equal("shop", json.RootElement.GetProperty("manifest").GetProperty("app").GetString());
        Assert.Empty(deploy.Stderr);
        Assert.True(File.Exists(manifest));
    }

    [Fact]
    public async Task Deploy_adds_a_process_and_its_route_in_one_command()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var web = CliServerFixture.NewName("h") + ".example.com";
        user.WriteFile("trc.toml", Manifest(web));
        await user.OkAsync("deploy", "--detach", "--image", Image);

        var api = CliServerFixture.NewName("api") + ".example.com";
        user.WriteFile("trc.toml", Manifest(web) + $$"""

            [processes.api]
            ports = [5432]
            memory = "128Mi"

            [[routes]]
            hostname = "{{api}}"
            process = "api"
            backend_port = 5432
            """);
        var deploy = await user.OkAsync("deploy", "--detach", "--image", Image);

        Assert.Contains("Deployed release 2", deploy.Stdout);
        Assert.Contains($"  route:  {api}:443 -> api:5432", deploy.Stdout);
        Assert.Matches($@"(?m)^{api.Replace(".", "\\.", StringComparison.Ordinal)}\s+443\s+tls_passthrough\s+api\s+5432", (await user.OkAsync("routes")).Stdout);
    }

    [Fact]
    public async Task Deploy_changes_a_routes_backend_port_and_a_volumes_backup_flag_in_place()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var hostname = CliServerFixture.NewName("h") + ".example.com";
        user.WriteFile("trc.toml", Manifest(hostname));
        await user.OkAsync("deploy", "--detach", "--image", Image);

        user.WriteFile("trc.toml", Manifest(hostname).Replace("ports = [8443]", "ports = [9443]", StringComparison.Ordinal)
            .Replace("backend_port = 8443", "backend_port = 9443", StringComparison.Ordinal)
            .Replace("backup_enabled = false", "backup_enabled = true", StringComparison.Ordinal));
        await user.OkAsync("deploy", "--detach", "--image", Image);

        Assert.Matches(@"(?m)\s+443\s+tls_passthrough\s+web\s+9443\s", (await user.OkAsync("routes")).Stdout);
        Assert.Matches(@"data\s+2Gi\s+web\s+yes\s", (await user.OkAsync("volumes")).Stdout);
    }

    [Fact]
    public async Task Deploy_with_a_resized_volume_is_refused_with_a_hint_that_holds_and_changes_nothing()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var hostname = CliServerFixture.NewName("h") + ".example.com";
        user.WriteFile("trc.toml", Manifest(hostname));
        await user.OkAsync("deploy", "--detach", "--image", Image);

        var other = CliServerFixture.NewName("h") + ".example.com";
        user.WriteFile("trc.toml", Manifest(hostname).Replace("size = \"2Gi\"", "size = \"4Gi\"", StringComparison.Ordinal) + $$"""

            [[routes]]
            hostname = "{{other}}"
            backend_port = 8443
            """);
        var deploy = await user.RunAsync("deploy", "--detach", "--image", Image);

        Assert.Equal(1, deploy.ExitCode);
        Assert.Contains("volume data of env prod is 2Gi, and the manifest asks for 4Gi", deploy.Stderr);
        Assert.Contains("keep size = \"2Gi\"", deploy.Stderr);
        Assert.DoesNotContain("trc deploy does this", deploy.Stderr);
        Assert.Contains("  field: manifest.volumes[0].size\n", deploy.Stderr);
        Assert.Contains("(409 volume_changed)", deploy.Stderr);
        Assert.Empty(deploy.StdoutBytes);
        Assert.DoesNotContain(other, (await user.OkAsync("routes")).Stdout);
        Assert.Matches(@"(?m)^1\s+deployed", (await user.OkAsync("releases")).Stdout);
    }

    [Fact]
    public async Task Deploy_whose_second_hostname_is_bound_to_another_env_creates_nothing()
    {
        var org = CliServerFixture.NewName();
        using var user = await CliSession.NewEnvAsync(server, org);
        await user.OkAsync("envs", "create", "staging");
        var bound = CliServerFixture.NewName("b") + ".example.com";
        user.WriteFile("trc.toml", Manifest(bound));
        await user.OkAsync("deploy", "--detach", "--env", "staging", "--image", Image);
        var fresh = CliServerFixture.NewName("f") + ".example.com";
        user.WriteFile("trc.toml", Manifest(fresh) + $$"""

            [[routes]]
            hostname = "{{bound}}"
            backend_port = 8443
            """);

        var deploy = await user.RunAsync("deploy", "--detach", "--env", "prod", "--image", Image);

        Assert.Equal(1, deploy.ExitCode);
        Assert.Contains($"hostname {bound} is bound to {org}/shop/staging", deploy.Stderr);
        Assert.Contains("(409 hostname_bound)", deploy.Stderr);
        Assert.DoesNotContain("Created", deploy.Stdout + deploy.Stderr);
        Assert.Single((await user.OkAsync("routes", "--env", "prod")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("\"items\": []", (await user.OkAsync("volumes", "--env", "prod", "--json")).Stdout);
        Assert.Matches(@"(?m)^routes\s+1\s", (await user.OkAsync("quotas")).Stdout);
    }

    [Fact]
    public async Task A_tag_is_resolved_once_and_the_release_records_the_index_and_platform_digests()
    {
        await using var registry = await LocalRegistry.StartAsync(RegistryAuth.Anonymous, CancellationToken.None);
        var index = await registry.PushMultiArchAsync("team/shop", "v1", CancellationToken.None);
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        user.WriteFile("trc.toml", Manifest(CliServerFixture.NewName("h") + ".example.com"));

        var deploy = await user.RunAsync("deploy", "--detach", "--image", $"{registry.Host}/team/shop:v1");

        Assert.True(deploy.ExitCode == 0, deploy.ToString());
        var pinned = $"{registry.Host}/team/shop@{index.IndexDigest}";
        Assert.Contains($"Resolved {registry.Host}/team/shop:v1 to {pinned}", deploy.Stderr);
        Assert.Contains($"image:  {pinned}", deploy.Stdout);
        using var release = JsonDocument.Parse((await user.OkAsync("releases", "show", "1", "--json")).Stdout);
        Assert.Equal(pinned, release.RootElement.GetProperty("image").GetString());
        var digests = release.RootElement.GetProperty("resolved_digests");
        Assert.Equal(index.Images[0].ManifestDigest, digests.GetProperty("linux/amd64").GetString());
        Assert.Equal(index.Images[1].ManifestDigest, digests.GetProperty("linux/arm64/v8").GetString());
    }

    [Theory]
    [InlineData("127.0.0.1:1/shop:latest", 5, "cannot reach 127.0.0.1:1")]
    [InlineData("registry.example.com/shop@sha256:abc", 1, "the digest is not valid")]
    [InlineData("oci:./layout:v1", 1, "an oci: layout is on this machine only")]
    [InlineData("Shop:latest", 1, "--image: ")]
    public async Task A_tag_that_cannot_be_resolved_is_an_error_and_nothing_is_deployed(string image, int exitCode, string expected)
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        user.WriteFile("trc.toml", Manifest(CliServerFixture.NewName("h") + ".example.com"));

        var deploy = await user.RunAsync("deploy", "--detach", "--image", image);

        Assert.Equal(exitCode, deploy.ExitCode);
        Assert.Contains(expected, deploy.Stderr);
        Assert.Empty((await user.OkAsync("routes")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1));
        Assert.Contains("\"items\": []", (await user.OkAsync("releases", "--json")).Stdout);
    }

    [Fact]
    public async Task An_invalid_manifest_is_reported_line_by_line_and_nothing_is_sent()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        user.WriteFile("trc.toml", "app = \"Shop\"\n[processes.web]\ncpu = 0\n");

        var deploy = await user.RunAsync("deploy", "--detach", "--image", Image);

        Assert.Equal(1, deploy.ExitCode);
        Assert.Contains("trc.toml:1:7: app:", deploy.Stderr);
        Assert.Contains("trc.toml:3:7: processes.web.cpu:", deploy.Stderr);
        Assert.Contains("3 problems; nothing was deployed", deploy.Stderr);
        Assert.Contains("\"items\": []", (await user.OkAsync("releases", "--json")).Stdout);
    }

    [Fact]
    public async Task A_missing_manifest_is_exit_3()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        var deploy = await user.RunAsync("deploy", "--detach", "--image", Image, "--manifest", "nope.toml");
        Assert.Equal(3, deploy.ExitCode);
        Assert.Contains("nope.toml: cannot read: no such file", deploy.Stderr);
    }

    [Fact]
    public async Task Deploy_without_an_env_is_a_usage_error_naming_the_option()
    {
        using var user = await CliSession.NewEnvAsync(server, CliServerFixture.NewName());
        user.Environment.Remove("TRC_ENV");
        user.WriteFile("trc.toml", Manifest(CliServerFixture.NewName("h") + ".example.com"));
        var deploy = await user.RunAsync("deploy", "--detach", "--image", Image);
        Assert.Equal(2, deploy.ExitCode);
        Assert.Contains("--env", deploy.Stderr);
    }

    [Fact]
    public async Task Deploy_to_an_app_that_does_not_exist_is_a_404_exit_1()
    {
        using var user = await CliSession.NewOrgAsync(server, CliServerFixture.NewName());
        user.WriteFile("trc.toml", Manifest(CliServerFixture.NewName("h") + ".example.com"));
        var deploy = await user.RunAsync("deploy", "--detach", "--image", Image, "--env", "prod");
        Assert.Equal(1, deploy.ExitCode);
        Assert.Contains("app shop not found", deploy.Stderr);
        Assert.Contains("(404 not_found)", deploy.Stderr);
    }
}
