using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

/// <summary>
/// What node agents call with the shared node token: registration, heartbeats, the instance list,
/// secrets, state reports and the node's change stream.
/// </summary>
public abstract partial class NodesTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    [GeneratedRegex("^fd74:7263:0:([0-9a-f]{1,4})::/64$")]
    private static partial Regex NodePrefix();

    /// <summary>Every event of these types, oldest first (as the admin).</summary>
    private async Task<List<EventView>> EventsAsync(params string[] types)
    {
        var all = new List<EventView>();
        long after = 0;
        var filter = string.Concat(types.Select(t => "&type=" + t));
        while (true)
        {
            var page = await TestServer.Send(Server.Admin, HttpMethod.Get, $"{ApiPaths.Events}?after={after}&limit=1000{filter}").Json<EventPageView>();
            all.AddRange(page.Events);
            if (page.Events.Count < 1000)
            {
                return all;
            }
            after = page.NextCursor;
        }
    }

    private static Dictionary<string, JsonElement> Secrets(params (string Key, string Value)[] values) =>
        values.ToDictionary(v => v.Key, v => JsonSerializer.SerializeToElement(v.Value));

    [Fact]
    public async Task A_first_registration_gets_the_next_64_and_registering_again_records_only_what_changed()
    {
        var name = NodeAgent.NewName();
        var first = await NodeAgent.RegisterAsync(Server, name, memory: 8L << 30, region: "eu-west");

        Assert.Equal(NodeState.IdOf(name), first.Id);
        Assert.Matches(NodePrefix(), first.Prefix);
        Assert.Equal((name, 8L << 30, 8, "fake", "none", "eu-west", "ready", "test-1"), (first.Name, first.MemoryBytes, first.Cpus, first.Driver, first.Acceleration, first.Region, first.Status, first.AgentVersion));
        Assert.NotNull(first.LastHeartbeat);
        var registered = (await EventsAsync(EventNames.NodeRegistered)).Single(e => e.AggregateId == first.Id);
        Assert.Equal(first.Id.ToString("D"), registered.RoutingKey);

        // The same again: the same node, nothing recorded.
        var again = await NodeAgent.RegisterAsync(Server, name, memory: 8L << 30, region: "eu-west");
        Assert.Equal((first.Id, first.Prefix, first.RegisteredAt), (again.Id, again.Prefix, again.RegisteredAt));
        Assert.DoesNotContain(await EventsAsync(EventNames.NodeUpdated), e => e.AggregateId == first.Id);

        // More memory after a restart: node.updated, and the prefix stays.
        var bigger = await NodeAgent.RegisterAsync(Server, name, memory: 16L << 30, region: "eu-west");
        Assert.Equal((first.Id, first.Prefix, 16L << 30), (bigger.Id, bigger.Prefix, bigger.MemoryBytes));
        var updated = Assert.Single(await EventsAsync(EventNames.NodeUpdated), e => e.AggregateId == first.Id);
        Assert.Equal(16L << 30, updated.Payload.GetProperty("memory_bytes").GetInt64());
        Assert.Equal(first.Prefix, updated.Payload.GetProperty("prefix").GetString());

        var seen = await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.Node(first.Id)).Json<NodeView>();
        Assert.Equal(bigger with { LastHeartbeat = seen.LastHeartbeat }, seen);
        Assert.Contains((await TestServer.Send(Server.Admin, HttpMethod.Get, NodeApiPaths.Nodes).Json<ListView<NodeView>>()).Items, n => n.Id == first.Id);
    }

    [Fact]
    public async Task Nodes_registering_at_once_get_distinct_prefixes_and_one_name_is_one_node()
    {
        var names = Enumerable.Range(0, 12).Select(_ => NodeAgent.NewName("par")).ToList();
        var views = await Task.WhenAll(names.Select(n => NodeAgent.RegisterAsync(Server, n)));
        Assert.Equal(names.Count, views.Select(v => v.Prefix).Distinct().Count());
        Assert.All(views, v => Assert.Matches(NodePrefix(), v.Prefix));

        // Every prefix the overlay handed out is recorded once, in order, without gaps.
        var allocated = (await EventsAsync(EventNames.OverlayPrefixAllocated)).Select(e => e.Payload.GetProperty("index").GetInt32()).ToList();
        Assert.Equal(Enumerable.Range(1, allocated.Count), allocated);
        var byNode = (await EventsAsync(EventNames.OverlayPrefixAllocated)).ToDictionary(e => e.Payload.GetProperty("node_id").GetGuid(), e => e.Payload.GetProperty("index").GetInt32());
        Assert.All(views, v => Assert.Equal(Convert.ToInt32(NodePrefix().Match(v.Prefix).Groups[1].Value, 16), byNode[v.Id]));

        // One agent registering many times at once (a retry storm): one node.
        var same = NodeAgent.NewName("same");
        var repeated = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => NodeAgent.RegisterAsync(Server, same)));
        Assert.Single(repeated.Select(v => (v.Id, v.Prefix)).Distinct());
        Assert.Single(await EventsAsync(EventNames.NodeRegistered), e => e.AggregateId == NodeState.IdOf(same));
    }

    [Fact]
    public async Task The_node_instances_view_has_everything_the_agent_needs_from_the_release()
    {
        var org = Setup.OrgName();
        const string manifest = """
            app = "shop"

            [processes.web]
            command = ["/app/server", "--port", "8443"]
            ports = [8443]
            cpu = 0.5
            memory = "256Mi"
            user = "app"
            [processes.web.healthcheck]
            http = { port = 8443, path = "/healthz" }
            interval = "5s"
            timeout = "2s"

            [[volumes]]
            name = "data"
            size = "1Gi"
            process = "web"
            """;
        var (_, instance) = await NodeAgent.RunningShopAsync(Server, org, manifest);
        var node = await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.Node(instance.NodeId)).Json<NodeView>();

        var view = await NodeAgent.InstancesAsync(Server, instance.NodeId);
        var spec = Assert.Single(view.Instances, i => i.Org == org);
        Assert.Equal(instance.Id, spec.Id);
        Assert.Equal((org, "shop", "prod", "web", 1, Setup.Image, Setup.Image.Split('@')[1]), (spec.Org, spec.App, spec.Env, spec.Process, spec.Release, spec.Image, spec.ImageDigest));
        Assert.Equal(["/app/server", "--port", "8443"], spec.Command!);
        Assert.Equal([8443], spec.Ports);
        Assert.Equal((0.5m, 256L << 20, "app", 0, node.Region), (spec.Cpu, spec.MemoryBytes, spec.User, spec.SecretsVersion, spec.Region));
        Assert.Equal(new HealthcheckView("http", 8443, "/healthz", 5000, 2000), spec.Healthcheck);
        Assert.Equal(new VolumeView("data", 1L << 30, "web", true, "/mnt/volumes/data"), Assert.Single(spec.Volumes));
        Assert.Null(spec.ResolvedDigests);
        var env = await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.Env(org, "shop", "prod")).Json<EnvView>();
        Assert.Equal(env.Id, spec.EnvId);

        // The position is where to follow the node's stream from; after=ID waits for that event.
        var scheduled = (await EventsAsync(EventNames.InstanceScheduled)).Single(e => e.Payload.GetProperty("instance_id").GetGuid() == instance.Id);
        Assert.True(view.Position >= scheduled.Id);
        var waited = await NodeAgent.InstancesAsync(Server, instance.NodeId, after: scheduled.Id);
        Assert.Contains(waited.Instances, i => i.Id == instance.Id);
        await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.NodeInstances(instance.NodeId) + "?after=-1").Problem(HttpStatusCode.BadRequest, "invalid_query");
        await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.NodeInstances(Guid.NewGuid())).Problem(HttpStatusCode.NotFound, "not_found");
        foreach (var after in new[] { "x", "1.5", "1&after=2", "99999999999999999999", "%00" })
        {
            (await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.NodeInstances(instance.NodeId) + "?after=" + after).Problem(HttpStatusCode.BadRequest, "invalid_query")).AssertField("after");
        }
        await TestServer.Send(Server.Node, HttpMethod.Get, "/v1/nodes/not-a-guid/instances").Problem(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task A_node_gets_the_secrets_file_of_its_instances_release_byte_for_byte_and_nothing_else()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"),
            new SetSecretsRequest(Secrets(("DATABASE_URL", "postgres://db/shop"), ("MULTI", "a\nb")))).Expect(HttpStatusCode.OK);
        var rendered = await (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.SecretsRender(org, "shop", "prod")).Expect(HttpStatusCode.OK)).Content.ReadAsByteArrayAsync();
        await NodeAgent.RegisterAsync(Server);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Setup.Manifest)).Expect(HttpStatusCode.Created);
        var instance = (await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Count == 1, "one instance"))[0];
        // It runs and serves (the rollout of release 1 completes), so the next rollout keeps it until it is replaced.
        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Running, "fd74:7263:0:1::b"));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Env(org, "shop", "prod")).Json<EnvView>()).Rollout != "completed")
        {
            Assert.True(DateTime.UtcNow < deadline, "release 1's rollout did not complete");
            await Task.Delay(50);
        }

        var response = await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.InstanceSecrets(instance.NodeId, instance.Id)).Expect(HttpStatusCode.OK);
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.Equal(rendered, await response.Content.ReadAsByteArrayAsync());

        // A new secrets version does not change what this instance runs with: it rolls out a new
        // release (same image, secrets version 2) on new instances.
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Secrets(org, "shop", "prod"), new SetSecretsRequest(Secrets(("DATABASE_URL", "changed")))).Expect(HttpStatusCode.OK);
        Assert.Equal(rendered, await (await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.InstanceSecrets(instance.NodeId, instance.Id)).Expect(HttpStatusCode.OK)).Content.ReadAsByteArrayAsync());

        // Another node, an unknown instance, and junk ids: one 404.
        var other = await NodeAgent.RegisterAsync(Server);
        var refusals = new[]
        {
            NodeApiPaths.InstanceSecrets(other.Id, instance.Id),
            NodeApiPaths.InstanceSecrets(instance.NodeId, Guid.NewGuid()),
            NodeApiPaths.Node(instance.NodeId) + "/instances/not-a-guid/secrets",
            "/v1/nodes/not-a-guid/instances/" + instance.Id + "/secrets",
        };
        var problems = new List<ProblemView>();
        foreach (var path in refusals)
        {
            problems.Add(await TestServer.Send(Server.Node, HttpMethod.Get, path).Problem(HttpStatusCode.NotFound, "not_found"));
        }
        Assert.Single(problems.Take(3).Distinct());

        // Release 2 (the secrets change's) runs with version 2; once it runs, the old instance is asked to stop and gets nothing more.
        var next = (await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Any(x => x.Release == 2), "release 2's instance")).Single(i => i.Release == 2);
        await NodeAgent.ReportAsync(Server, next.NodeId, next.Id, new InstanceStateRequest(InstanceStates.Running, "fd74:7263:0:1::c"));
        await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.All(x => x.Release == 2 || x.StopRequested), "release 1 stopping");
        await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.InstanceSecrets(instance.NodeId, instance.Id)).Problem(HttpStatusCode.NotFound, "not_found");
        var v2 = await (await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.InstanceSecrets(next.NodeId, next.Id)).Expect(HttpStatusCode.OK)).Content.ReadAsStringAsync();
        Assert.Contains("DATABASE_URL=changed", v2);

        // Org tokens, even the owner's, never read a node's secrets.
        await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.InstanceSecrets(next.NodeId, next.Id)).Problem(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task A_release_without_secrets_answers_204()
    {
        var (_, instance) = await NodeAgent.RunningShopAsync(Server, Setup.OrgName());
        var response = await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.InstanceSecrets(instance.NodeId, instance.Id)).Expect(HttpStatusCode.NoContent);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task State_reports_are_recorded_once_and_running_instances_become_edge_backends()
    {
        var org = Setup.OrgName();
        var (owner, instance) = await NodeAgent.RunningShopAsync(Server, org);
        var hostname = $"nodes-{Guid.NewGuid().ToString("N")[..8]}.example.com";
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Routes(org, "shop", "prod"), Setup.Route(hostname)).Expect(HttpStatusCode.Created);
        Assert.Equal(InstanceStates.Scheduled, instance.State);

        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Starting));
        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Starting));
        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Running, "FD74:7263:0:1::0a"));
        // Healthy without the address keeps it.
        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Healthy));

        var changes = (await EventsAsync(EventNames.InstanceStateChanged)).Where(e => e.AggregateId == instance.Id).ToList();
        Assert.Equal(["starting", "running", "healthy"], changes.Select(e => e.Payload.GetProperty("state").GetString()));
        Assert.All(changes, e => Assert.Equal(instance.NodeId.ToString("D"), e.RoutingKey));
        Assert.All(changes, e => Assert.Equal(EventNames.InstanceAggregate, e.AggregateType));

        var listed = Assert.Single((await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.Instances(org, "shop", "prod")).Json<ListView<InstanceView>>()).Items);
        Assert.Equal((InstanceStates.Healthy, "fd74:7263:0:1::a"), (listed.State, listed.Address));
        // A backend once the scheduler switched the env's traffic to this (its first) deployment.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        IReadOnlyList<string> backends;
        do
        {
            backends = (await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.EdgeRoutes).Json<EdgeRoutesView>()).Routes.Single(r => r.Hostname == hostname).Backends;
        }
        while (backends.Count == 0 && DateTime.UtcNow < deadline && await Task.Delay(50).ContinueWith(_ => true));
        Assert.Equal(["[fd74:7263:0:1::a]:8443"], backends);

        // Unhealthy leaves the edge; an exit is recorded with its code.
        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Unhealthy));
        Assert.Empty((await TestServer.Send(Server.Admin, HttpMethod.Get, ApiPaths.EdgeRoutes).Json<EdgeRoutesView>()).Routes.Single(r => r.Hostname == hostname).Backends);
        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Exited, ExitCode: 3, Restarts: 1));
        listed = Assert.Single((await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.Instances(org, "shop", "prod")).Json<ListView<InstanceView>>()).Items);
        Assert.Equal((InstanceStates.Exited, 3, 1), (listed.State, listed.ExitCode, listed.Restarts));
    }

    [Fact]
    public async Task An_instance_asked_to_stop_that_its_nodes_heartbeat_leaves_out_is_stopped_once()
    {
        // As after trc dev or an agent stopped with its VMs while the scheduler moved them: no agent
        // will report their end, so the node's heartbeat, which no longer lists them, is it.
        var org = Setup.OrgName();
        var (owner, instance) = await NodeAgent.RunningShopAsync(Server, org);
        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Running, "fd74:7263:0:1::b"));
        await TestServer.Send(Server.Admin, HttpMethod.Put, NodeApiPaths.NodeState(instance.NodeId), new NodeStateRequest(NodeAdminStates.Disabled)).Expect(HttpStatusCode.OK);
        await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.Any(x => x.Id == instance.Id && x.StopRequested), "the stop request");

        // A heartbeat that still lists it (the agent is stopping it): nothing.
        await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Heartbeat(instance.NodeId),
            new HeartbeatRequest(1L << 30, 8, [new InstanceHeartbeat(instance.Id, InstanceStates.Running)])).Expect(HttpStatusCode.NoContent);
        Assert.Equal(["running"], await StatesOfAsync(instance.Id));

        // One that leaves it out: stopped, with why (recorded after the answer, so a heartbeat never
        // waits on it); again: nothing more; the agent's own late word: nothing more.
        await NodeAgent.HeartbeatAsync(Server, instance.NodeId);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await StatesOfAsync(instance.Id)).Count < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        await NodeAgent.HeartbeatAsync(Server, instance.NodeId);
        await NodeAgent.ReportAsync(Server, instance.NodeId, instance.Id, new InstanceStateRequest(InstanceStates.Stopped));
        await Task.Delay(300); // the second heartbeat's after-answer work, had it any
        Assert.Equal(["running", "stopped"], await StatesOfAsync(instance.Id));
        var stopped = (await EventsAsync(EventNames.InstanceStateChanged)).Last(e => e.AggregateId == instance.Id);
        Assert.Equal("its node no longer runs it (not in the node's heartbeat)", stopped.Payload.GetProperty("reason").GetString());
        await NodeAgent.WaitForInstancesAsync(owner, org, "prod", i => i.All(x => x.Id != instance.Id), "the stopped instance to leave the env's list");
    }

    private async Task<List<string?>> StatesOfAsync(Guid instance) =>
        (await EventsAsync(EventNames.InstanceStateChanged)).Where(e => e.AggregateId == instance).Select(e => e.Payload.GetProperty("state").GetString()).ToList();

    [Fact]
    public async Task State_reports_are_checked_and_only_for_the_nodes_own_instances()
    {
        var (_, instance) = await NodeAgent.RunningShopAsync(Server, Setup.OrgName());
        var path = NodeApiPaths.InstanceState(instance.NodeId, instance.Id);
        var before = (await EventsAsync(EventNames.InstanceStateChanged)).Count;

        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new InstanceStateRequest("scheduled")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_state")).AssertField("state");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new InstanceStateRequest("Running")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_state")).AssertField("state");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new InstanceStateRequest("running", "10.0.0.1")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_address")).AssertField("address");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new InstanceStateRequest("running", "fe80::1%eth0")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_address")).AssertField("address");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new InstanceStateRequest("failed", Reason: "two\nlines")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_reason")).AssertField("reason");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new InstanceStateRequest("failed", Reason: new string('x', 1025))).Problem(HttpStatusCode.UnprocessableEntity, "invalid_reason")).AssertField("reason");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new InstanceStateRequest("running", Restarts: -1)).Problem(HttpStatusCode.UnprocessableEntity, "invalid_restarts")).AssertField("restarts");
        // Not text at all (half a surrogate pair): malformed JSON for this API.
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, """{"state":"running","address":"\ud800"}""").Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("address");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, """{"state":7}""").Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("state");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, """{"state":"running","restarts":"1"}""").Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("restarts");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, """{"address":"fd00::1"}""").Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("'state'");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, """{"state":"running","pid":1}""").Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("pid");
        await TestServer.Send(Server.Node, HttpMethod.Post, path, """{"state":""").Problem(HttpStatusCode.BadRequest, "invalid_json");

        // Another node's instance, an unknown one: the same 404, before the body is looked at.
        var other = await NodeAgent.RegisterAsync(Server);
        var foreign = await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.InstanceState(other.Id, instance.Id), new InstanceStateRequest("running")).Problem(HttpStatusCode.NotFound, "not_found");
        var unknown = await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.InstanceState(instance.NodeId, Guid.NewGuid()), "{").Problem(HttpStatusCode.NotFound, "not_found");
        Assert.Equal(foreign, unknown);
        Assert.Equal(before, (await EventsAsync(EventNames.InstanceStateChanged)).Count);
    }

    [Fact]
    public async Task Heartbeats_are_checked_and_unknown_nodes_are_404()
    {
        var node = await NodeAgent.RegisterAsync(Server);
        await NodeAgent.HeartbeatAsync(Server, node.Id);
        await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Heartbeat(node.Id), new HeartbeatRequest(1, 1, [new InstanceHeartbeat(Guid.NewGuid(), "running")])).Expect(HttpStatusCode.NoContent);
        (await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Heartbeat(node.Id), new HeartbeatRequest(1, 1, [new InstanceHeartbeat(Guid.NewGuid(), "dancing")]))
            .Problem(HttpStatusCode.UnprocessableEntity, "invalid_state")).AssertField("instances[0].state");
        (await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Heartbeat(node.Id), new HeartbeatRequest(-1, 1, [])).Problem(HttpStatusCode.UnprocessableEntity, "invalid_memory")).AssertField("memory_bytes");
        (await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Heartbeat(node.Id), """{"memory_bytes":1,"cpus":1,"instances":[null]}""").Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("instances[0]");
        (await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Heartbeat(node.Id), """{"memory_bytes":1,"cpus":1}""").Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("'instances'");
        await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Heartbeat(Guid.NewGuid()), new HeartbeatRequest(1, 1, [])).Problem(HttpStatusCode.NotFound, "not_found");
        await TestServer.Send(Server.Node, HttpMethod.Post, "/v1/nodes/42/heartbeat", new HeartbeatRequest(1, 1, [])).Problem(HttpStatusCode.NotFound, "not_found");

        var path = NodeApiPaths.Heartbeat(node.Id);
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new HeartbeatRequest(1, -1, [])).Problem(HttpStatusCode.UnprocessableEntity, "invalid_cpus")).AssertField("cpus");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, """{"memory_bytes":1,"cpus":1,"instances":[{"id":"x","state":"running"}]}""")
            .Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("instances[0].id");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, $$"""{"memory_bytes":1,"cpus":1,"instances":[{"id":"{{Guid.NewGuid()}}","state":null}]}""")
            .Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("instances[0].state");
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, $$"""{"memory_bytes":1,"cpus":1,"instances":[{"id":"{{Guid.NewGuid()}}","state":"running","pid":7}]}""")
            .Problem(HttpStatusCode.BadRequest, "invalid_json")).AssertField("instances[0].pid");
        var crowd = Enumerable.Range(0, Api.NodeEndpoints.MaxHeartbeatInstances + 1).Select(_ => new InstanceHeartbeat(Guid.NewGuid(), "running")).ToList();
        (await TestServer.Send(Server.Node, HttpMethod.Post, path, new HeartbeatRequest(1, 1, crowd)).Problem(HttpStatusCode.UnprocessableEntity, "too_many_instances")).AssertField("instances");
    }

    [Fact]
    public async Task Registrations_are_checked_field_by_field()
    {
        async Task RefusedAsync(object body, HttpStatusCode status, string code, string? field) =>
            (await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Nodes, body).Problem(status, code)).AssertField(field);

        var ok = NodeAgent.Request(NodeAgent.NewName());
        await RefusedAsync(ok with { Name = "Node_1" }, HttpStatusCode.UnprocessableEntity, "invalid_node_name", "name");
        await RefusedAsync(ok with { Name = new string('a', 64) }, HttpStatusCode.UnprocessableEntity, "invalid_node_name", "name");
        await RefusedAsync(ok with { Name = "-x" }, HttpStatusCode.UnprocessableEntity, "invalid_node_name", "name");
        await RefusedAsync(ok with { MemoryBytes = 0 }, HttpStatusCode.UnprocessableEntity, "invalid_memory", "memory_bytes");
        await RefusedAsync(ok with { Cpus = 0 }, HttpStatusCode.UnprocessableEntity, "invalid_cpus", "cpus");
        await RefusedAsync(ok with { Driver = "docker" }, HttpStatusCode.UnprocessableEntity, "invalid_driver", "driver");
        await RefusedAsync(ok with { Acceleration = "hvf" }, HttpStatusCode.UnprocessableEntity, "invalid_acceleration", "acceleration");
        await RefusedAsync(ok with { Region = "EU WEST" }, HttpStatusCode.UnprocessableEntity, "invalid_region", "region");
        await RefusedAsync(ok with { AgentVersion = "1.0 beta" }, HttpStatusCode.UnprocessableEntity, "invalid_agent_version", "agent_version");
        await RefusedAsync("""{"name":"x","memory_bytes":"lots","cpus":1,"driver":"fake","acceleration":"none"}""", HttpStatusCode.BadRequest, "invalid_json", "memory_bytes");
        await RefusedAsync("""{"name":"x","memory_bytes":1,"cpus":1,"driver":"fake"}""", HttpStatusCode.BadRequest, "invalid_json", "'acceleration'");
        await RefusedAsync("""{"name":"x","memory_bytes":1,"cpus":1.5,"driver":"fake","acceleration":"none"}""", HttpStatusCode.BadRequest, "invalid_json", "cpus");
        await RefusedAsync("""[1,2]""", HttpStatusCode.BadRequest, "invalid_json", null);
        var text = await Server.Node.PostAsync(NodeApiPaths.Nodes, new StringContent("name=x", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, text.StatusCode);

        // The edges of each field, and names a DNS label cannot hold.
        await RefusedAsync(ok with { Name = "" }, HttpStatusCode.UnprocessableEntity, "invalid_node_name", "name");
        await RefusedAsync(ok with { Name = "nöde" }, HttpStatusCode.UnprocessableEntity, "invalid_node_name", "name");
        await RefusedAsync(ok with { Name = new string('a', 100_000) }, HttpStatusCode.UnprocessableEntity, "invalid_node_name", "name");
        await RefusedAsync(ok with { MemoryBytes = NodeDecisions.MaxMemoryBytes + 1 }, HttpStatusCode.UnprocessableEntity, "invalid_memory", "memory_bytes");
        await RefusedAsync(ok with { MemoryBytes = -1 }, HttpStatusCode.UnprocessableEntity, "invalid_memory", "memory_bytes");
        await RefusedAsync(ok with { Cpus = NodeDecisions.MaxCpus + 1 }, HttpStatusCode.UnprocessableEntity, "invalid_cpus", "cpus");
        await RefusedAsync(ok with { Region = "" }, HttpStatusCode.UnprocessableEntity, "invalid_region", "region");
        await RefusedAsync(ok with { AgentVersion = "" }, HttpStatusCode.UnprocessableEntity, "invalid_agent_version", "agent_version");
        await RefusedAsync(ok with { AgentVersion = new string('1', 65) }, HttpStatusCode.UnprocessableEntity, "invalid_agent_version", "agent_version");
        await RefusedAsync("""{"name":null,"memory_bytes":1,"cpus":1,"driver":"fake","acceleration":"none"}""", HttpStatusCode.BadRequest, "invalid_json", "name");
        await RefusedAsync("""{"name":"x","memory_bytes":1,"cpus":1,"driver":["fake"],"acceleration":"none"}""", HttpStatusCode.BadRequest, "invalid_json", "driver");
        var hostile = await TestServer.Send(Server.Node, HttpMethod.Post, NodeApiPaths.Nodes, ok with { Name = "node-\u0000\u202e" }).Problem(HttpStatusCode.UnprocessableEntity, "invalid_node_name");
        Assert.DoesNotContain(hostile.Detail!, c => char.IsControl(c) || c == '\u202e');
        Assert.DoesNotContain(await EventsAsync(EventNames.NodeRegistered), e => e.Payload.GetProperty("name").GetString() == ok.Name);
    }

    [Fact]
    public async Task A_node_token_reads_only_its_nodes_change_stream()
    {
        var (_, instance) = await NodeAgent.RunningShopAsync(Server, Setup.OrgName());
        var page = await TestServer.Send(Server.Node, HttpMethod.Get, $"{ApiPaths.Events}?node={instance.NodeId}&limit=1000").Json<EventPageView>();
        Assert.Contains(page.Events, e => e.Type == EventNames.InstanceScheduled && e.Payload.GetProperty("instance_id").GetGuid() == instance.Id);
        Assert.All(page.Events, e => Assert.Equal(instance.NodeId.ToString("D"), e.RoutingKey));
        // Upper case is the same node.
        var upper = await TestServer.Send(Server.Node, HttpMethod.Get, $"{ApiPaths.Events}?node={instance.NodeId.ToString("D").ToUpperInvariant()}&limit=1000").Json<EventPageView>();
        Assert.Equal(page.Events.Select(e => e.Id), upper.Events.Select(e => e.Id));

        await TestServer.Send(Server.Node, HttpMethod.Get, ApiPaths.Events).Problem(HttpStatusCode.Forbidden, "forbidden");
        await TestServer.Send(Server.Node, HttpMethod.Get, ApiPaths.Events + "?node=all").Problem(HttpStatusCode.Forbidden, "forbidden");
        await TestServer.Send(Server.Node, HttpMethod.Get, ApiPaths.EventsStream).Problem(HttpStatusCode.Forbidden, "forbidden");

        // The stream with node=ID: the node's events as they come.
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{ApiPaths.EventsStream}?node={instance.NodeId}");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await Server.Node.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        Assert.Equal("id: " + page.Events[0].Id, await reader.ReadLineAsync(cts.Token));
    }

    [Fact]
    public async Task Org_tokens_cannot_call_node_endpoints_and_the_node_token_nothing_else()
    {
        var org = Setup.OrgName();
        var (owner, instance) = await NodeAgent.RunningShopAsync(Server, org);
        await TestServer.Send(owner, HttpMethod.Post, NodeApiPaths.Nodes, NodeAgent.Request(NodeAgent.NewName())).Problem(HttpStatusCode.Forbidden, "forbidden");
        await TestServer.Send(owner, HttpMethod.Get, NodeApiPaths.NodeInstances(instance.NodeId)).Problem(HttpStatusCode.Forbidden, "forbidden");
        var a = await TestServer.Send(Server.Node, HttpMethod.Get, ApiPaths.Env(org, "shop", "prod")).Problem(HttpStatusCode.Forbidden, "forbidden");
        var b = await TestServer.Send(Server.Node, HttpMethod.Get, ApiPaths.Env("no-such-org", "x", "y")).Problem(HttpStatusCode.Forbidden, "forbidden");
        var c = await TestServer.Send(Server.Node, HttpMethod.Get, NodeApiPaths.Nodes).Problem(HttpStatusCode.Forbidden, "forbidden");
        var d = await TestServer.Send(Server.Node, HttpMethod.Get, ApiPaths.WhoAmI).Problem(HttpStatusCode.Forbidden, "forbidden");
        Assert.Single(new[] { a, b, c, d }.Distinct());
        // The admin may do what nodes do.
        await TestServer.Send(Server.Admin, HttpMethod.Get, NodeApiPaths.NodeInstances(instance.NodeId)).Expect(HttpStatusCode.OK);
    }
}

internal static class ProblemAssertions
{
    public static void AssertField(this ProblemView problem, string? field) =>
        Assert.True(problem.Field == field, $"expected field {field ?? "(none)"}, got {problem.Field ?? "(none)"}: {problem.Detail}");
}

public sealed class SqliteNodesTests(SqliteServer fixture) : NodesTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresNodesTests(PostgresServer fixture) : NodesTests(fixture), IClassFixture<PostgresServer>;

/// <summary>Liveness: ready while heard from within the lease, silent after (a per-replica view).</summary>
public sealed class NodeLivenessTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task A_node_is_ready_while_it_heartbeats_silent_after_its_lease_then_lost_and_recovered(Backend backend)
    {
        var clock = new ShiftedClock();
        await using var server = await TestServer.StartAsync(backend, o => o with { Time = clock, NodeLease = TimeSpan.FromSeconds(15), SchedulerInterval = TimeSpan.FromMilliseconds(200) });
        var node = await NodeAgent.RegisterAsync(server);
        Assert.Equal("ready", node.Status);

        clock.Offset += TimeSpan.FromSeconds(16);
        // Silent past the lease; the scheduler's next pass declares it lost.
        var silent = await TestServer.Send(server.Admin, HttpMethod.Get, NodeApiPaths.Node(node.Id)).Json<NodeView>();
        Assert.Contains(silent.Status, new[] { "silent", "lost" });
        Assert.Equal(node.LastHeartbeat, silent.LastHeartbeat);
        var lost = await StatusAsync(server, node.Id, "lost");
        Assert.StartsWith("silent since ", lost.StatusReason);

        await NodeAgent.HeartbeatAsync(server, node.Id);
        var back = await StatusAsync(server, node.Id, "ready");
        Assert.StartsWith("heard from again", back.StatusReason);
        Assert.True(back.LastHeartbeat > node.LastHeartbeat!.Value + TimeSpan.FromSeconds(15));
        var changes = await TestServer.Send(server.Admin, HttpMethod.Get, ApiPaths.Events + $"?type={EventNames.NodeLost}&type={EventNames.NodeRecovered}").Json<EventPageView>();
        Assert.Equal([EventNames.NodeLost, EventNames.NodeRecovered], changes.Events.Select(e => e.Type));

        // No heartbeat is an event.
        var events = await TestServer.Send(server.Admin, HttpMethod.Get, ApiPaths.Events + "?limit=1000").Json<EventPageView>();
        Assert.DoesNotContain(events.Events, e => e.Type.Contains("heartbeat", StringComparison.Ordinal));
    }

    private static async Task<NodeView> StatusAsync(TestServer server, Guid node, string status)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var view = await TestServer.Send(server.Admin, HttpMethod.Get, NodeApiPaths.Node(node)).Json<NodeView>();
            if (view.Status == status)
            {
                return view;
            }
            Assert.True(DateTime.UtcNow < deadline, $"node is {view.Status}, not {status}, after 30 s");
            await Task.Delay(50);
        }
    }
}
