using System.Runtime.Versioning;
using System.Text.Json.Nodes;
using Trc.Agent.Runtime;
using Trc.Agent.Runtime.Firecracker;
using Trc.Core.Tests;

namespace Trc.Agent.Tests.Firecracker;

/// <summary>
/// The real driver's start, run against a fake Firecracker API on a real unix socket, checked
/// against Firecracker's own swagger (../shared/testdata/firecracker/firecracker.yaml): every
/// request is an operation of the spec, every body validates against that operation's schema
/// (strictly: a field the schema does not name is an error), the order is the documented one,
/// and nothing from the instance reaches the kernel command line.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class FirecrackerApiContractTests
{
    private const long MiB = 1L << 20;

    [SharedTestDataTheory]
    [InlineData(false, 0, 256 * MiB, true)]        // the common case
    [InlineData(false, 3, 256 * MiB, true)]        // several volumes
    [InlineData(false, 0, 128 * MiB, false)]       // no network
    [InlineData(false, 1, 64L * 1024 * MiB, true)] // large memory
    [InlineData(true, 2, 1024 * MiB + 1, true)]    // jailed; memory not a whole MiB
    public async Task A_start_sends_only_spec_operations_with_valid_bodies_in_order(bool jailer, int volumes, long memoryBytes, bool network)
    {
        using var bed = new FirecrackerTestBed();
        var spec = bed.Spec("c0ffee00-0000-4000-8000-000000000001", volumes, memoryBytes, vcpus: 2, network);
        var requests = await StartAsync(bed, spec, jailer);

        AssertConformsToSpec(requests);

        var expected = new List<string> { "PUT /boot-source" };
        expected.AddRange(Enumerable.Range(0, 3 + volumes).Select(i => "PUT /drives/" + FirecrackerLaunch.DiskName(i)));
        expected.Add("PUT /machine-config");
        if (network)
        {
            expected.Add("PUT /network-interfaces/eth0");
        }
        expected.Add("PUT /actions");
        Assert.Equal(expected, requests.Select(r => $"{r.Method} {r.Path}"));

        var bodies = requests.Select(r => JsonNode.Parse(r.Body)!).ToList();
        var boot = bodies[0];
        Assert.Equal(FirecrackerLaunch.BootArgs, boot["boot_args"]!.GetValue<string>());
        Assert.Equal(jailer ? "/vmlinux" : spec.Kernel, boot["kernel_image_path"]!.GetValue<string>());
        Assert.Equal(jailer ? "/initrd" : spec.Initrd, boot["initrd_path"]!.GetValue<string>());

        // The guest contract's disk order and modes: vda root ro, vdb scratch, vdc config ro, vdd+ volumes.
        var sources = new[] { spec.RootDisk, spec.ScratchDisk, spec.ConfigDisk }.Concat(spec.Volumes).ToList();
        for (var i = 0; i < sources.Count; i++)
        {
            var drive = bodies[1 + i];
            var name = FirecrackerLaunch.DiskName(i);
            Assert.Equal(name, drive["drive_id"]!.GetValue<string>());
            Assert.Equal(jailer ? "/" + name : sources[i], drive["path_on_host"]!.GetValue<string>());
            Assert.Equal(i is 0 or 2, drive["is_read_only"]!.GetValue<bool>());
            Assert.False(drive["is_root_device"]!.GetValue<bool>());
        }

        var machine = bodies[1 + sources.Count];
        Assert.Equal(2, machine["vcpu_count"]!.GetValue<int>());
        Assert.Equal((memoryBytes + MiB - 1) / MiB, machine["mem_size_mib"]!.GetValue<long>());
        if (network)
        {
            var nic = bodies[^2];
            Assert.Equal("eth0", nic["iface_id"]!.GetValue<string>());
            Assert.Equal(spec.Network!.TapDevice, nic["host_dev_name"]!.GetValue<string>());
            Assert.Equal(spec.Network.MacAddress, nic["guest_mac"]!.GetValue<string>());
        }
        Assert.Equal("InstanceStart", bodies[^1]["action_type"]!.GetValue<string>());
    }

    [SharedTestDataFact]
    public async Task Nothing_from_the_instance_reaches_the_kernel_command_line()
    {
        using var bed = new FirecrackerTestBed();
        var requests = await StartAsync(bed, bed.Spec("c0ffee00-0000-4000-8000-000000000002"), jailer: false);

        var bootArgs = JsonNode.Parse(requests.Single(r => r.Path == "/boot-source").Body)!["boot_args"]!.GetValue<string>();
        // The very line docs/guest.md gives, and nothing else.
        Assert.Equal(GuestDocKernelCommandLine(), bootArgs);
        Assert.All(requests, r =>
        {
            Assert.DoesNotContain(FirecrackerTestBed.Secret, r.Body, StringComparison.Ordinal);
            Assert.DoesNotContain(FirecrackerTestBed.Secret, r.Path, StringComparison.Ordinal);
        });
    }

    [SharedTestDataTheory]
    [InlineData("/drives/vdb")]
    [InlineData("/machine-config")]
    [InlineData("/actions")]
    public async Task A_refused_request_fails_the_start_naming_the_request_and_leaves_nothing_running(string refused)
    {
        using var bed = new FirecrackerTestBed();
        var spec = bed.Spec("c0ffee00-0000-4000-8000-000000000003");
        var driver = new FirecrackerDriver(bed.Options(jailer: true));
        await using var api = FakeFirecrackerApi.WhenLaunched(bed.ArgvFile, FirecrackerTestBed.SocketOf);
        api.Respond = r => r.Path == refused ? (400, """{"fault_message": "The requested operation is not supported: bad input"}""") : null;

        var e = await Assert.ThrowsAsync<VmStartException>(() => driver.StartAsync(spec, CancellationToken.None));

        Assert.Contains("PUT " + refused, e.Message, StringComparison.Ordinal);
        Assert.Contains("The requested operation is not supported: bad input", e.Message, StringComparison.Ordinal);
        Assert.Contains("400", e.Message, StringComparison.Ordinal);
        // Nothing after the refusal was sent, and nothing was left behind.
        Assert.Equal(refused, api.Requests[^1].Path);
        Assert.Null(HostProcess.Find(bed.StandInPid));
        Assert.False(File.Exists(Path.Combine(spec.StateDir, FirecrackerLaunch.RecordFile)));
        Assert.False(Directory.Exists(Path.Combine(bed.ChrootBase, "firecracker", spec.InstanceId)));
        Assert.Empty(await driver.RecoverAsync(bed.Instances, CancellationToken.None));
    }

    [SharedTestDataFact]
    public async Task An_error_without_a_fault_message_is_quoted_as_it_came()
    {
        using var bed = new FirecrackerTestBed();
        var driver = new FirecrackerDriver(bed.Options(jailer: false));
        await using var api = FakeFirecrackerApi.WhenLaunched(bed.ArgvFile, FirecrackerTestBed.SocketOf);
        api.Respond = r => r.Path == "/boot-source" ? (500, "kernel loader exploded") : null;

        var e = await Assert.ThrowsAsync<VmStartException>(() => driver.StartAsync(bed.Spec("c0ffee00-0000-4000-8000-000000000004"), CancellationToken.None));

        Assert.Contains("PUT /boot-source (500", e.Message, StringComparison.Ordinal);
        Assert.Contains("kernel loader exploded", e.Message, StringComparison.Ordinal);
    }

    [SharedTestDataFact]
    public void The_spec_checker_rejects_bodies_that_break_the_spec()
    {
        var spec = FirecrackerSpec.Instance;
        IReadOnlyList<string> Errors(string method, string path, string body)
        {
            var (_, operation) = spec.Find(method, path) ?? throw new InvalidOperationException($"{method} {path} is not in the spec");
            return spec.Validator.Validate(JsonNode.Parse(body), FirecrackerSpec.BodySchema(operation)!);
        }

        Assert.Empty(Errors("PUT", "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 256}"""));
        Assert.Contains(Errors("PUT", "/machine-config", """{"vcpu_count": 0, "mem_size_mib": 256}"""), e => e.Contains("minimum", StringComparison.Ordinal));
        Assert.Contains(Errors("PUT", "/machine-config", """{"vcpu_count": 33, "mem_size_mib": 256}"""), e => e.Contains("maximum", StringComparison.Ordinal));
        Assert.Contains(Errors("PUT", "/machine-config", """{"vcpu_count": 2}"""), e => e.Contains("'mem_size_mib' is missing", StringComparison.Ordinal));
        Assert.Contains(Errors("PUT", "/machine-config", """{"vcpu_count": 1.5, "mem_size_mib": 256}"""), e => e.Contains("expected integer", StringComparison.Ordinal));
        Assert.Contains(Errors("PUT", "/drives/vda", """{"drive_id": "vda", "is_root_device": "no"}"""), e => e.Contains("expected boolean", StringComparison.Ordinal));
        Assert.Contains(Errors("PUT", "/drives/vda", """{"drive_id": "vda", "is_root_device": false, "is_readonly": true}"""), e => e.Contains("'is_readonly' is not in the schema", StringComparison.Ordinal));
        Assert.Contains(Errors("PUT", "/drives/vda", """{"drive_id": "vda", "is_root_device": false, "cache_type": "Fast"}"""), e => e.Contains("is not one of", StringComparison.Ordinal));
        Assert.Contains(Errors("PUT", "/actions", """{"action_type": "Start"}"""), e => e.Contains("is not one of", StringComparison.Ordinal));
        // $ref into nested definitions: a rate limiter's bucket needs size and refill_time.
        Assert.Contains(Errors("PUT", "/drives/vda", """{"drive_id": "vda", "is_root_device": false, "rate_limiter": {"bandwidth": {"size": 1}}}"""),
            e => e.Contains("$.rate_limiter.bandwidth: the required property 'refill_time' is missing", StringComparison.Ordinal));
        Assert.Null(spec.Find("PUT", "/drive/vda"));
        Assert.Null(spec.Find("POST", "/actions"));
        Assert.Null(spec.Find("PUT", "/drives/"));
    }

    // The checks every request of every start passes.
    private static void AssertConformsToSpec(IReadOnlyList<ApiRequest> requests)
    {
        var spec = FirecrackerSpec.Instance;
        Assert.NotEmpty(requests);
        foreach (var request in requests)
        {
            var found = spec.Find(request.Method, request.Path);
            Assert.True(found is not null, $"{request.Method} {request.Path} is not an operation of Firecracker's API");
            var (template, operation) = found.Value;
            Assert.Equal("application/json", request.Headers["content-type"]);
            Assert.True(request.Headers.ContainsKey("content-length"), $"{request.Method} {request.Path} has no Content-Length");
            var schema = FirecrackerSpec.BodySchema(operation);
            Assert.True(schema is not null, $"{request.Method} {template} takes no body, but one was sent");
            var body = JsonNode.Parse(request.Body);
            var errors = spec.Validator.Validate(body, schema!);
            Assert.True(errors.Count == 0, $"{request.Method} {request.Path}: {string.Join("; ", errors)}\n{request.Body}");
            // A path parameter and the body's id must agree (Firecracker refuses otherwise).
            if (template.EndsWith('}'))
            {
                var parameter = template[(template.LastIndexOf('{') + 1)..^1];
                Assert.Equal(request.Path[(request.Path.LastIndexOf('/') + 1)..], body![parameter]?.GetValue<string>());
            }
        }
        foreach (var operation in requests.Select(r => spec.Find(r.Method, r.Path)!.Value.Operation).Where(FirecrackerSpec.BodyRequired))
        {
            Assert.NotNull(FirecrackerSpec.BodySchema(operation));
        }
    }

    // Starts the spec with the real driver against the fake API and returns what the API received.
    private static async Task<IReadOnlyList<ApiRequest>> StartAsync(FirecrackerTestBed bed, VmSpec spec, bool jailer)
    {
        var driver = new FirecrackerDriver(bed.Options(jailer));
        await using var api = FakeFirecrackerApi.WhenLaunched(bed.ArgvFile, FirecrackerTestBed.SocketOf);
        await using var vm = await driver.StartAsync(spec, CancellationToken.None);
        try
        {
            return api.Requests;
        }
        finally
        {
            await vm.KillAsync(CancellationToken.None);
        }
    }

    private static string GuestDocKernelCommandLine()
    {
        var doc = File.ReadAllLines(Path.Combine(SharedTestData.RepositoryRoot, "docs", "guest.md"));
        var section = Array.IndexOf(doc, "## Kernel command line");
        Assert.True(section >= 0, "docs/guest.md has no 'Kernel command line' section");
        var line = doc.Skip(section + 1).First(l => l.StartsWith('`'));
        return line[1..line.IndexOf('`', 1)];
    }
}
