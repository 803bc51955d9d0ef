using System.Text.Json;
using Trc.Core.Manifest;

namespace Trc.Core.Tests.Manifest;

public sealed class ManifestJsonTests
{
    [Fact]
    public void The_normalized_json_has_every_default_sizes_in_bytes_and_a_fixed_key_order()
    {
        var manifest = ManifestLoader.Load("""
            app = "shop"
            [processes.worker]
            memory = "256Mi"
            [processes.web]
            memory = "1Gi"
            ports = [8443]
            healthcheck.http = { port = 8443 }
            [[routes]]
            hostname = "shop.example.com"
            backend_port = 8443
            [[volumes]]
            name = "data"
            size = "10Gi"
            """).Manifest!;
        const string expected = """
            {
              "app": "shop",
              "processes": {
                "web": {
                  "command": null,
                  "ports": [
                    8443
                  ],
                  "cpu": 1,
                  "memory_bytes": 1073741824,
                  "user": null,
                  "scaling": {
                    "min": 1,
                    "max": 1
                  },
                  "healthcheck": {
                    "type": "http",
                    "port": 8443,
                    "path": "/",
                    "interval_ms": 10000,
                    "timeout_ms": 2000
                  }
                },
                "worker": {
                  "command": null,
                  "ports": [],
                  "cpu": 1,
                  "memory_bytes": 268435456,
                  "user": null,
                  "scaling": {
                    "min": 1,
                    "max": 1
                  },
                  "healthcheck": null
                }
              },
              "routes": [
                {
                  "hostname": "shop.example.com",
                  "listen_port": 443,
                  "protocol": "tls_passthrough",
                  "process": "web",
                  "backend_port": 8443,
                  "proxy_protocol": "off",
                  "backend_expects_proxy_protocol": false,
                  "ipv4_required": false
                }
              ],
              "volumes": [
                {
                  "name": "data",
                  "size_bytes": 10737418240,
                  "process": "web",
                  "backup_enabled": true,
                  "mount_path": "/mnt/volumes/data"
                }
              ]
            }

            """;
        Assert.Equal(expected, ManifestJson.Serialize(manifest));
    }

    [Fact]
    public void The_same_manifest_written_differently_gives_the_same_json()
    {
        var a = ManifestLoader.Load("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncpu = 0.5\nscaling = { min = 2, max = 2 }\n").Manifest!;
        var b = ManifestLoader.Load("processes.web.scaling.max = 2\nprocesses.web.scaling.min = 2\nprocesses.web.cpu = 0.500\napp = 'a'\nprocesses.web.memory = \"1048576Ki\"\n").Manifest!;
        Assert.Equal(ManifestJson.Serialize(a), ManifestJson.Serialize(b));
    }

    [Fact]
    public void Cpu_is_written_as_an_exact_decimal()
    {
        var manifest = ManifestLoader.Load("app = \"a\"\n[processes.web]\nmemory = \"1Gi\"\ncpu = 0.1\n").Manifest!;
        using var json = JsonDocument.Parse(ManifestJson.Serialize(manifest));
        Assert.Equal("0.1", json.RootElement.GetProperty("processes").GetProperty("web").GetProperty("cpu").GetRawText());
    }

    [Fact]
    public void Reading_the_normalized_json_gives_back_the_manifest()
    {
        var manifest = ManifestLoader.Load("""
            app = "shop"
            [processes.web]
            command = ["/app/server", "--port", "8443"]
            memory = "1Gi"
            cpu = 0.25
            user = "app"
            ports = [8443, 9090]
            healthcheck.http = { port = 8443, path = "/healthz" }
            scaling = { min = 2, max = 3 }
            [processes.worker]
            memory = "256Mi"
            ports = [9000]
            healthcheck.tcp = 9000
            [[routes]]
            hostname = "shop.example.com"
            backend_port = 8443
            proxy_protocol = "v2"
            backend_expects_proxy_protocol = true
            [[routes]]
            hostname = "db.example.com"
            listen_port = 5432
            protocol = "tcp_raw"
            backend_port = 9090
            [[volumes]]
            name = "data"
            size = "10Gi"
            process = "worker"
            backup_enabled = false
            """).Manifest!;
        using var json = JsonDocument.Parse(ManifestJson.Serialize(manifest));
        var read = ManifestJson.Read(json.RootElement);
        Assert.Equal(ManifestJson.Serialize(manifest), ManifestJson.Serialize(read));
        Assert.Equal(manifest.Processes[0].Healthcheck, read.Processes[0].Healthcheck);
        Assert.Equal(manifest.Routes, read.Routes);
        Assert.Equal(manifest.Volumes, read.Volumes);
    }

    [Fact]
    public void Reading_json_that_is_not_a_normalized_manifest_is_a_json_error()
    {
        using var json = JsonDocument.Parse("""{"app":"shop","processes":{"web":{"ports":"8443"}}}""");
        Assert.Throws<JsonException>(() => ManifestJson.Read(json.RootElement));
    }
}
