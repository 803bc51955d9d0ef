using System.CommandLine;
using Trc.Cli.Remote;
using Trc.Core.Api;
using Trc.Core.Manifest;

namespace Trc.Cli.Commands;

/// <summary><c>trc rollback</c>, <c>trc restart</c>, <c>trc scale</c>, <c>trc deployments</c>, and following a rollout.</summary>
internal static class RolloutCommands
{
    /// <summary>How often a follower looks at the rollout.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(500);

    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Rollback(console);
        yield return Restart(console);
        yield return Scale(console);
        yield return Deployments(console);
    }

    /// <summary>The <c>--detach</c> option of every command that starts a rollout.</summary>
    public static Option<bool> DetachOption() => new("--detach") { Description = "Return once the rollout is recorded; do not follow it." };

    private static Command Rollback(CliConsole console)
    {
        var to = new Option<int?>("--to") { Description = "Roll back to this release (default: the release that served before the one serving now).", HelpName = "N" };
        var detach = DetachOption();
        var command = new Command("rollback", """
            Roll back: a new release with the image (by digest) and manifest of the release
            that served before the one serving now (or of --to N), with the env's current
            secrets, rolled out blue/green like a deploy. Follows the rollout until it completes
            (exit 0) or fails (exit 6), unless --detach.

            Examples:
              trc rollback --env prod
              trc rollback --env prod --to 3
            """);
        command.Options.Add(to);
        command.Options.Add(detach);
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var deployment = await context.Client.RollbackAsync(context.Org, context.App, context.Env, context.Value(to), ct: ct).ConfigureAwait(false);
            return await StartedAsync(context, deployment, context.Value(detach), ct).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Restart(CliConsole console)
    {
        var detach = DetachOption();
        var command = new Command("restart", """
            Restart every instance of the env once, blue/green: fresh instances of the release
            it runs start, pass their health checks, take the traffic, and the old ones stop.
            Follows the rollout until it completes (exit 0) or fails (exit 6), unless --detach.

            Example:
              trc restart --env prod
            """);
        command.Options.Add(detach);
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var deployment = await context.Client.RestartAsync(context.Org, context.App, context.Env, ct: ct).ConfigureAwait(false);
            return await StartedAsync(context, deployment, context.Value(detach), ct).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Scale(CliConsole console)
    {
        var count = new Argument<int>("COUNT") { Description = "How many instances the process runs (within its manifest's scaling.min and scaling.max)." };
        var process = new Option<string>("--process") { Description = $"The process type (default: {ManifestSchema.DefaultProcess}).", HelpName = "PROCESS", DefaultValueFactory = _ => ManifestSchema.DefaultProcess };
        var command = new Command("scale", """
            Run COUNT instances of a process. The scheduler starts the missing ones (spread
            over the nodes) or stops the extras; the edge sends connections to each new one
            once it is healthy. COUNT must be within the manifest's scaling bounds (the org's
            quotas count every process at scaling.max already).

            --wait waits (up to 5 minutes, printing each change) until COUNT instances of the
            serving release run and pass their health check.

            Examples:
              trc scale 2 --env prod
              trc scale 2 --env prod --wait
              trc scale 4 --env prod --process worker
            """);
        var wait = new Option<bool>("--wait") { Description = "Wait until COUNT instances run (and are healthy, when the process has a health check); exit 6 after 5 minutes." };
        command.Arguments.Add(count);
        command.Options.Add(process);
        command.Options.Add(wait);
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var env = await context.Client.ScaleAsync(context.Org, context.App, context.Env, context.Value(process)!, context.Value(count), ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(env);
                return ExitCodes.Ok;
            }
            console.Out.WriteLine(TextTable.Clean($"{context.Org}/{context.App}/{context.Env}: {context.Value(process)} runs {context.Value(count)} instance{(context.Value(count) == 1 ? "" : "s")} from now on (trc ps shows them)."));
            return context.Value(wait) ? await WaitForScaleAsync(context, context.Value(process)!, context.Value(count), TimeSpan.FromMinutes(5), ct).ConfigureAwait(false) : ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// Polls the env's instances until exactly <paramref name="count"/> of <paramref name="process"/>
    /// in the serving deployment are live and ready (healthy when the serving release's manifest
    /// gives the process a health check, else running), printing the states as they change. Exit 6
    /// at the timeout.
    /// </summary>
    private static async Task<int> WaitForScaleAsync(RemoteContext context, string process, int count, TimeSpan timeout, CancellationToken ct)
    {
        var started = DateTimeOffset.UtcNow;
        string? last = null;
        bool? checkedHealth = null;
        while (true)
        {
            var env = await context.Client.GetEnvAsync(context.Org, context.App, context.Env, ct).ConfigureAwait(false);
            var instances = (await context.Client.ListInstancesAsync(context.Org, context.App, context.Env, ct).ConfigureAwait(false)).Items
                .Where(i => i.Process == process && !i.StopRequested && (env.Deployment == 0 || i.Deployment == 0 || i.Deployment == env.Deployment)).ToList();
            var line = string.Join(", ", instances.GroupBy(i => i.State).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}"));
            if (line != last)
            {
                context.Console.Out.WriteLine(TextTable.Clean($"  {DateTimeOffset.Now:HH:mm:ss} {process}: {(line.Length == 0 ? "no instances" : line)}"));
                last = line;
            }
            // Ready is healthy when the serving release's process has a health check, else running.
            var serving = env.ActiveRelease > 0 ? env.ActiveRelease : env.DeployedRelease;
            if (checkedHealth is null && serving > 0)
            {
                var release = await context.Client.GetReleaseAsync(context.Org, context.App, context.Env, serving, ct).ConfigureAwait(false);
                checkedHealth = release.Manifest.TryGetProperty("processes", out var processes) && processes.TryGetProperty(process, out var spec)
                    && spec.TryGetProperty("healthcheck", out var check) && check.ValueKind == System.Text.Json.JsonValueKind.Object;
            }
            var ready = instances.Count(i => i.State == InstanceStates.Healthy || (checkedHealth == false && i.State == InstanceStates.Running));
            // Exactly COUNT left (extras going down are stop-requested, and leave the list), all ready.
            var live = instances.Count(i => i.State != InstanceStates.Stopped);
            if (live == count && ready >= count)
            {
                context.Console.Out.WriteLine(TextTable.Clean($"{process}: {count} instance{(count == 1 ? "" : "s")} ready."));
                return ExitCodes.Ok;
            }
            if (DateTimeOffset.UtcNow - started > timeout)
            {
                context.Console.Err.WriteLine(TextTable.Clean($"trc: {process} did not reach {count} ready instance{(count == 1 ? "" : "s")} in {timeout.TotalMinutes:0} minutes ({line})"));
                return ExitCodes.RolloutFailed;
            }
            await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
        }
    }

    private static Command Deployments(CliConsole console)
    {
        var command = new Command("deployments", """
            The env's deployments (rollouts), newest first: release, kind (deploy, rollback,
            secrets, restart), status (rolling, draining, completed, failed, superseded,
            replaced) and why a failed one failed.

            Examples:
              trc deployments --env prod
              trc deployments --env prod --json
            """);
        var target = Target.Add(command, org: true, app: true, env: true, json: true);
        RemoteCommand.SetAction(command, console, target, async (context, ct) =>
        {
            var list = await context.Client.ListDeploymentsAsync(context.Org, context.App, context.Env, ct: ct).ConfigureAwait(false);
            if (context.Json)
            {
                context.PrintJson(list);
                return ExitCodes.Ok;
            }
            var table = new TextTable("#", "RELEASE", "KIND", "STATUS", "STARTED", "REASON");
            foreach (var d in list.Items)
            {
                table.Add(TextTable.Number(d.Number), TextTable.Number(d.Release), d.Kind, d.Status, TextTable.Time(d.StartedAt), d.FailureReason ?? d.Reason);
            }
            table.Write(console.Out);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Prints what a command started, then follows it unless detached.</summary>
    private static async Task<int> StartedAsync(RemoteContext context, DeploymentView deployment, bool detach, CancellationToken ct)
    {
        if (!context.Json)
        {
            context.Console.Out.WriteLine(TextTable.Clean($"Deployment {deployment.Number} of {context.Org}/{context.App}/{context.Env}: release {deployment.Release} ({deployment.Kind}): {deployment.Reason}"));
        }
        if (detach)
        {
            if (context.Json)
            {
                context.PrintJson(deployment);
            }
            return ExitCodes.Ok;
        }
        return await FollowAsync(context, context.App, deployment.Number, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Follows a rollout until it completes (exit 0), fails or is superseded (exit 6): prints each
    /// instance of it as it changes state, the traffic switch, and the end. With --json, prints only
    /// the deployment at the end.
    /// </summary>
    public static async Task<int> FollowAsync(RemoteContext context, string app, int number, CancellationToken ct)
    {
        var (org, env, o) = (context.Org, context.Env, context.Console.Out);
        var said = new Dictionary<Guid, string>();
        string? status = null;
        var switched = false;
        while (true)
        {
            var d = await context.Client.GetDeploymentAsync(org, app, env, number, ct).ConfigureAwait(false);
            if (!context.Json)
            {
                var instances = await context.Client.ListInstancesAsync(org, app, env, ct).ConfigureAwait(false);
                foreach (var i in instances.Items.Where(i => i.Deployment == number && !i.StopRequested))
                {
                    var now = $"{i.State}{(i.ExitCode is { } code ? $" ({code})" : "")}";
                    if (said.TryGetValue(i.Id, out var before) && before == now)
                    {
                        continue;
                    }
                    said[i.Id] = now;
                    o.WriteLine(TextTable.Clean($"  instance {InstanceCommands.Short(i.Id)} {i.Process} on {i.Node}: {now}{(i.Reason is { Length: > 0 } r && i.State is not InstanceStates.Healthy and not InstanceStates.Running ? " - " + r : "")}"));
                }
                if (d.SwitchedAt is not null && !switched)
                {
                    // Said once, whether the poll saw it draining or only completed.
                    o.WriteLine($"  traffic switched to release {d.Release}; the instances before drain");
                    switched = true;
                }
                if (d.Status != status)
                {
                    switch (d.Status)
                    {
                        case "completed":
                            o.WriteLine($"Deployment {d.Number} completed: release {d.Release} serves.");
                            break;
                        case "failed":
                            context.Console.Err.WriteLine(TextTable.Clean($"Deployment {d.Number} failed: {d.FailureReason}"));
                            break;
                        case "superseded":
                            context.Console.Err.WriteLine($"Deployment {d.Number} was superseded by a newer one before it took traffic.");
                            break;
                    }
                    status = d.Status;
                }
            }
            switch (d.Status)
            {
                case "completed":
                case "replaced":
                    if (context.Json)
                    {
                        context.PrintJson(d);
                    }
                    return ExitCodes.Ok;
                case "failed":
                case "superseded":
                    if (context.Json)
                    {
                        context.PrintJson(d);
                    }
                    return ExitCodes.RolloutFailed;
            }
            await Task.Delay(Poll, ct).ConfigureAwait(false);
        }
    }
}
