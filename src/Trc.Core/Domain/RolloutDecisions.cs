using System.Globalization;
using Trc.Core.Manifest;
using Trc.Core.Scheduling;

namespace Trc.Core.Domain;

/// <summary>
/// The commands that start a rollout without a new image (rollback, restart, secrets) and scaling,
/// as pure functions. The rollout itself is the scheduler's (<see cref="Rollouts"/>).
/// </summary>
public static class RolloutDecisions
{
    /// <summary>
    /// The release an env runs from the user's point of view: the latest deployment's, unless its
    /// rollout failed, then the one still serving; null when nothing was deployed or nothing serves.
    /// </summary>
    public static ReleaseCreated? Running(EnvState env) =>
        env.RolloutStatus == RolloutStatuses.Failed ? env.Release(env.ActiveRelease) : env.Release(env.DeployedRelease);

    /// <summary>
    /// Records a new release copying <paramref name="source"/>'s image and manifest with secrets
    /// version <paramref name="secretsVersion"/>, and starts its rollout. The org's usage moves from
    /// the latest deployment's release to the copy's (they differ only when the latest failed).
    /// </summary>
    /// <param name="env">The env.</param>
    /// <param name="org">Its org.</param>
    /// <param name="source">The release copied.</param>
    /// <param name="secretsVersion">The secrets version of the copy.</param>
    /// <param name="kind">The deployment's kind.</param>
    /// <param name="reason">Why, for people.</param>
    /// <param name="before">Env events to append before the release (a new secrets version).</param>
    public static IReadOnlyList<Change> Redeploy(EnvState env, OrgState org, ReleaseCreated source, int secretsVersion, string kind, string reason, IReadOnlyList<DomainEvent> before)
    {
        var number = env.Releases.Count + 1;
        var release = source with { Number = number, SecretsVersion = secretsVersion };
        var events = new List<DomainEvent>(before)
        {
            new(EventNames.ReleaseCreated, release),
            new(EventNames.ReleaseDeployed, new ReleaseDeployed(number, env.Deployment + 1, kind, reason)),
        };
        var changes = new List<Change> { env.Change(env.OrgId, events.ToArray()) };
        if (env.Deployed is { } current && (current.MemoryBytes != release.MemoryBytes || current.Instances != release.Instances))
        {
            var usage = org.Usage with
            {
                MemoryBytes = org.Usage.MemoryBytes - current.MemoryBytes + release.MemoryBytes,
                Instances = org.Usage.Instances - current.Instances + release.Instances,
            };
            changes.Add(org.Change(org.Id, org.UseChange(usage, $"release {number} of {env.AppName}/{env.Name} ({kind})")));
        }
        return changes;
    }

    /// <summary>
    /// Rolls back: a new release with the image (by digest) and manifest of release
    /// <paramref name="to"/>, or of the release that served before the one serving now, with the
    /// env's current secrets. Refused when there is no such release.
    /// </summary>
    public static IReadOnlyList<Change> Rollback(EnvState env, OrgState org, int? to)
    {
        ReleaseCreated source;
        if (to is { } number)
        {
            source = env.Release(number) ?? throw DomainException.Invalid("unknown_release", "release",
                env.Releases.Count == 0 ? $"env {env.Name} has no releases" : $"env {env.Name} has no release {number} (releases 1 to {env.Releases.Count})");
        }
        else
        {
            var serving = env.ActiveRelease;
            var previous = env.ServedReleases.Reverse().SkipWhile(r => r == serving).FirstOrDefault();
            if (serving == 0 || previous == 0)
            {
                throw DomainException.Conflict("nothing_to_roll_back_to",
                    serving == 0
                        ? $"env {env.Name} has no release serving yet, so there is nothing before it; deploy, or name a release with --to"
                        : $"env {env.Name} has served only release {serving}; name a release with --to");
            }
            source = env.Release(previous)!;
        }
        return Redeploy(env, org, source, env.SecretsVersion, DeploymentKinds.Rollback,
            $"trc rollback: release {source.Number}'s image {source.ImageDigest[..Math.Min(19, source.ImageDigest.Length)]}… and manifest", []);
    }

    /// <summary>
    /// Restarts every instance once, blue/green: a new deployment of the release the env runs.
    /// </summary>
    public static IReadOnlyList<Change> Restart(EnvState env)
    {
        var running = Running(env) ?? throw DomainException.Conflict("nothing_to_restart", $"env {env.Name} runs no release; deploy first");
        var deployed = new ReleaseDeployed(running.Number, env.Deployment + 1, DeploymentKinds.Restart, $"trc restart: release {running.Number} on fresh instances");
        return [env.Change(env.OrgId, new DomainEvent(EventNames.ReleaseDeployed, deployed))];
    }

    /// <summary>
    /// Sets how many instances a process runs, within the running release's scaling bounds (which
    /// the org's quotas already count at their maximum). Nothing when it runs that many already.
    /// </summary>
    public static IReadOnlyList<Change> Scale(EnvState env, string process, int count)
    {
        Decisions.CheckName(process, "process");
        var running = Running(env) ?? throw DomainException.Conflict("nothing_to_scale", $"env {env.Name} runs no release; deploy first");
        var spec = ManifestJson.Read(running.Manifest).FindProcess(process)
            ?? throw DomainException.Invalid("unknown_process", "process", $"release {running.Number} has no process {process}");
        if (count < spec.Scaling.Min || count > spec.Scaling.Max)
        {
            throw DomainException.Invalid("scale_out_of_bounds", "count",
                $"process {process} of release {running.Number} scales from {spec.Scaling.Min} to {spec.Scaling.Max} instances (its manifest's scaling); {count.ToString(CultureInfo.InvariantCulture)} is outside: change scaling.max in the manifest and deploy to go beyond");
        }
        if (env.Scale.TryGetValue(process, out var current) && current == count)
        {
            return [];
        }
        return [env.Change(env.OrgId, new DomainEvent(EventNames.EnvScaled, new EnvScaled(process, count)))];
    }
}
