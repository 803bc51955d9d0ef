using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Trc.ControlPlane.Commands;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.EventStore;

namespace Trc.ControlPlane.Api;

/// <summary>
/// Rollouts as users drive and follow them: the env's deployments, rollback, restart and scale
/// (deployer and up to change, viewer to read; org-scoped like every env endpoint). The rollout
/// itself is the scheduler's.
/// </summary>
public static class RolloutEndpoints
{
    /// <summary>Most deployments one list returns.</summary>
    public const int MaxListed = 100;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(RouteGroupBuilder v1, ApiServices s)
    {
        const string env = "/orgs/{org}/apps/{app}/envs/{env}";

        v1.MapGet(env + "/deployments", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await Endpoints.EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            var limit = (int)EventEndpoints.Number(http.Request.Query["limit"], "limit", 1, MaxListed, 20);
            return Endpoints.Ok(new ListView<DeploymentView>(await s.Catalog.DeploymentsAsync(e.View.Id, limit, ct)));
        }).Produces<ListView<DeploymentView>>().WithName("listDeployments")
          .WithSummary("The env's deployments (rollouts), newest first; limit=N (1-100, default 20).");

        v1.MapGet(env + "/deployments/{number:int}", async (HttpContext http, string org, string app, string env, int number, CancellationToken ct) =>
        {
            var e = await Endpoints.EnvAsync(http, s, org, app, env, Roles.Viewer, ct);
            return Endpoints.Ok(await s.Catalog.DeploymentAsync(e.View.Id, number, ct) ?? throw DomainException.NotFound($"deployment {number}"));
        }).Produces<DeploymentView>().WithName("getDeployment").WithSummary("One deployment: its status, and why it failed if it did.");

        v1.MapPost(env + "/rollback", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await Endpoints.EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<RollbackRequest>(http, s.MaxBodyBytes);
            if (body.Release is < 1)
            {
                throw DomainException.Invalid("invalid_release", "release", "release is a release number (from 1)");
            }
            return await StartedAsync(http, s, e.View.Id, fingerprint, async load =>
            {
                var state = await load.LoadAsync(e.View.Id, i => new EnvState(i), ct);
                return RolloutDecisions.Rollback(state, await load.LoadAsync(state.OrgId, i => new OrgState(i), ct), body.Release);
            }, ct);
        }).Accepts<RollbackRequest>("application/json").Produces<DeploymentView>(201).WithName("rollback")
          .WithSummary("Roll back: a new release with the image (by digest) and manifest of the release that served before the one serving now (or of release N), rolled out blue/green.");

        v1.MapPost(env + "/restart", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await Endpoints.EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            var fingerprint = $"POST {http.Request.Path}";
            return await StartedAsync(http, s, e.View.Id, fingerprint, async load =>
                RolloutDecisions.Restart(await load.LoadAsync(e.View.Id, i => new EnvState(i), ct)), ct);
        }).Produces<DeploymentView>(201).WithName("restart")
          .WithSummary("Restart every instance once, blue/green: a new deployment of the release the env runs.");

        v1.MapPut(env + "/scale", async (HttpContext http, string org, string app, string env, CancellationToken ct) =>
        {
            var e = await Endpoints.EnvAsync(http, s, org, app, env, Roles.Deployer, ct);
            var (body, fingerprint) = await JsonBody.ReadAsync<ScaleRequest>(http, s.MaxBodyBytes);
            await s.Runner.RunAsync(Caller.Get(http), Endpoints.Key(http), fingerprint, async load =>
                RolloutDecisions.Scale(await load.LoadAsync(e.View.Id, i => new EnvState(i), ct), body.Process ?? "", body.Count), ct);
            return Endpoints.Ok((await s.Catalog.EnvByIdAsync(org, e.View.Id, ct))!.View);
        }).Accepts<ScaleRequest>("application/json").Produces<EnvView>().WithName("scale")
          .WithSummary("Run COUNT instances of a process (within its manifest's scaling bounds); the scheduler starts or stops the difference.");
    }

    /// <summary>Runs a command that starts a deployment and answers with it (201).</summary>
    private static async Task<IResult> StartedAsync(HttpContext http, ApiServices s, Guid envId, string fingerprint, Func<AggregateLoader, Task<IReadOnlyList<Change>>> decide, CancellationToken ct)
    {
        var last = await s.Runner.RunAsync(Caller.Get(http), Endpoints.Key(http), fingerprint, decide, ct);
        // The deployment this request started (or, replayed, started the first time).
        var started = (await s.Store.ReadAggregateAsync(EventNames.EnvAggregate, envId, 0, ct))
            .Last(x => x.EventType == EventNames.ReleaseDeployed && x.EventId <= last);
        var deployed = EventJson.Deserialize<ReleaseDeployed>(started.PayloadJson);
        var number = deployed.Deployment ?? 0;
        return Results.Json(await s.Catalog.DeploymentAsync(envId, number, ct) ?? throw new NotReadyException($"deployment {number} is recorded but not yet readable"),
            ApiJson.Options, statusCode: 201);
    }
}
