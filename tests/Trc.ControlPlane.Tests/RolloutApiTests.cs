using System.Net;
using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.ControlPlane.Tests;

/// <summary>
/// The rollout endpoints' rules and refusals (deployments, rollback, restart, scale, node states),
/// on both stores. How rollouts run is SchedulerTests' and the agent tests' FleetTests.
/// </summary>
public abstract class RolloutApiTests(ServerFixture fixture)
{
    private TestServer Server => fixture.Server;

    private const string Scaled = Setup.Manifest + "\n[processes.web.scaling]\nmin = 1\nmax = 3\n";

    [Fact]
    public async Task A_deploy_answers_its_deployment_and_the_deployments_list_shows_it()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        var release = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Scaled)).Json<ReleaseView>(HttpStatusCode.Created);
        Assert.Equal(1, release.Deployment);
        var d = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Deployment(org, "shop", "prod", 1)).Json<DeploymentView>();
        Assert.Equal((1, 1, DeploymentKinds.Deploy, "rolling"), (d.Number, d.Release, d.Kind, d.Status));
        Assert.StartsWith("trc deploy: release 1 of shop/prod", d.Reason);
        var env = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Env(org, "shop", "prod")).Json<EnvView>();
        Assert.Equal((1, 0, 1, "rolling"), (env.DeployedRelease, env.ActiveRelease, env.Deployment, env.Rollout));

        // A second deploy before the first took traffic supersedes it.
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Scaled)).Expect(HttpStatusCode.Created);
        var list = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Deployments(org, "shop", "prod") + "?limit=1").Json<ListView<DeploymentView>>();
        Assert.Equal(2, Assert.Single(list.Items).Number);
        Assert.Equal("superseded", (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Deployment(org, "shop", "prod", 1)).Json<DeploymentView>()).Status);
        await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Deployment(org, "shop", "prod", 9)).Problem(HttpStatusCode.NotFound, "not_found");
        foreach (var limit in new[] { "0", "101", "x", "-1" })
        {
            (await TestServer.Send(owner, HttpMethod.Get, ApiPaths.Deployments(org, "shop", "prod") + "?limit=" + limit).Problem(HttpStatusCode.BadRequest, "invalid_query")).AssertField("limit");
        }
    }

    [Fact]
    public async Task Restart_rollback_and_scale_need_a_release_and_refuse_what_is_out_of_bounds()
    {
        var org = Setup.OrgName();
        var owner = await Setup.ShopAsync(Server, org, deploy: false);
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Restart(org, "shop", "prod")).Problem(HttpStatusCode.Conflict, "nothing_to_restart");
        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Rollback(org, "shop", "prod"), new RollbackRequest()).Problem(HttpStatusCode.Conflict, "nothing_to_roll_back_to");
        await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Scale(org, "shop", "prod"), new ScaleRequest("web", 1)).Problem(HttpStatusCode.Conflict, "nothing_to_scale");

        await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Releases(org, "shop", "prod"), new DeployRequest(Setup.Image, Scaled)).Expect(HttpStatusCode.Created);
        var scale = await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Scale(org, "shop", "prod"), new ScaleRequest("web", 4)).Problem(HttpStatusCode.UnprocessableEntity, "scale_out_of_bounds");
        scale.AssertField("count");
        Assert.Contains("from 1 to 3", scale.Detail);
        (await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Scale(org, "shop", "prod"), new ScaleRequest("worker", 1)).Problem(HttpStatusCode.UnprocessableEntity, "unknown_process")).AssertField("process");
        (await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Scale(org, "shop", "prod"), new ScaleRequest("Bad Name!", 1)).Problem(HttpStatusCode.UnprocessableEntity)).AssertField("process");
        (await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Rollback(org, "shop", "prod"), new RollbackRequest(0)).Problem(HttpStatusCode.UnprocessableEntity, "invalid_release")).AssertField("release");
        (await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Rollback(org, "shop", "prod"), new RollbackRequest(7)).Problem(HttpStatusCode.UnprocessableEntity, "unknown_release")).AssertField("release");

        var env = await TestServer.Send(owner, HttpMethod.Put, ApiPaths.Scale(org, "shop", "prod"), new ScaleRequest("web", 3)).Json<EnvView>();
        Assert.Equal("prod", env.Name);
        var events = await TestServer.Send(owner, HttpMethod.Get, ApiPaths.OrgEvents(org) + "?type=" + EventNames.EnvScaled).Json<EventPageView>();
        Assert.Equal(3, Assert.Single(events.Events).Payload.GetProperty("count").GetInt32());

        var restart = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Restart(org, "shop", "prod")).Json<DeploymentView>(HttpStatusCode.Created);
        Assert.Equal((2, 1, DeploymentKinds.Restart), (restart.Number, restart.Release, restart.Kind));
        var rollback = await TestServer.Send(owner, HttpMethod.Post, ApiPaths.Rollback(org, "shop", "prod"), new RollbackRequest(1)).Json<DeploymentView>(HttpStatusCode.Created);
        Assert.Equal((3, 2, DeploymentKinds.Rollback), (rollback.Number, rollback.Release, rollback.Kind));

        // Viewers read, never act.
        var viewer = await Server.TokenAsync(org, Roles.Viewer);
        await TestServer.Send(viewer, HttpMethod.Post, ApiPaths.Restart(org, "shop", "prod")).Problem(HttpStatusCode.Forbidden);
        await TestServer.Send(viewer, HttpMethod.Get, ApiPaths.Deployments(org, "shop", "prod")).Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_node_state_is_set_by_the_admin_only_and_named_states_only()
    {
        var node = await NodeAgent.RegisterAsync(Server);
        var drained = await TestServer.Send(Server.Admin, HttpMethod.Put, NodeApiPaths.NodeState(node.Id), new NodeStateRequest(NodeAdminStates.Draining, "kernel upgrade")).Json<NodeView>();
        Assert.Equal(("draining", "draining", "kernel upgrade"), (drained.Status, drained.AdminState, drained.StatusReason));
        var disabled = await TestServer.Send(Server.Admin, HttpMethod.Put, NodeApiPaths.NodeState(node.Id), new NodeStateRequest(NodeAdminStates.Disabled)).Json<NodeView>();
        Assert.Equal(("disabled", "set disabled by the operator"), (disabled.Status, disabled.StatusReason));
        var active = await TestServer.Send(Server.Admin, HttpMethod.Put, NodeApiPaths.NodeState(node.Id), new NodeStateRequest(NodeAdminStates.Active)).Json<NodeView>();
        Assert.Equal(("ready", "active"), (active.Status, active.AdminState));

        (await TestServer.Send(Server.Admin, HttpMethod.Put, NodeApiPaths.NodeState(node.Id), new NodeStateRequest("asleep")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_admin_state")).AssertField("state");
        (await TestServer.Send(Server.Admin, HttpMethod.Put, NodeApiPaths.NodeState(node.Id), new NodeStateRequest("draining", "two\nlines")).Problem(HttpStatusCode.UnprocessableEntity, "invalid_reason")).AssertField("reason");
        await TestServer.Send(Server.Admin, HttpMethod.Put, NodeApiPaths.NodeState(Guid.NewGuid()), new NodeStateRequest("draining")).Problem(HttpStatusCode.NotFound, "not_found");
        // The node token runs nodes, it does not administer them; an org owner does not either.
        await TestServer.Send(Server.Node, HttpMethod.Put, NodeApiPaths.NodeState(node.Id), new NodeStateRequest("disabled")).Problem(HttpStatusCode.Forbidden);
        var owner = await Setup.ShopAsync(Server, Setup.OrgName(), deploy: false);
        await TestServer.Send(owner, HttpMethod.Put, NodeApiPaths.NodeState(node.Id), new NodeStateRequest("disabled")).Problem(HttpStatusCode.Forbidden);
    }
}

public sealed class SqliteRolloutApiTests(SqliteServer fixture) : RolloutApiTests(fixture), IClassFixture<SqliteServer>;

public sealed class PostgresRolloutApiTests(PostgresServer fixture) : RolloutApiTests(fixture), IClassFixture<PostgresServer>;
