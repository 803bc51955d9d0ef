using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using Microsoft.Extensions.Logging;
using Trc.Agent.Runtime;
using Trc.Client;
using Trc.Client.Events;
using Trc.Core.Api;
using Trc.Core.Domain;
using Trc.Edge;
using Trc.Edge.Metrics;
using Trc.Edge.Routing;
using Xunit.Abstractions;

namespace Trc.Agent.Tests.EndToEnd;

/// <summary>
/// A blue/green rollout on one node, for real: QEMU microVMs (TCG) serve a raw TCP route through a
/// real edge (in this process, fed by the bed's control plane as <c>trc edge --control-plane</c>
/// is), while a client connects through the edge over and over. The rollout must switch the edge
/// from release 1 to release 2 without one client connection failing, and then stop release 1.
/// The timeline it writes (and puts in any failure) shows each run of answers with the edge's
/// backends and the node bridge's MAC address at the time, and the slowest connections.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(AgentBedCollection.Name)]
public sealed class BlueGreenEdgeTests(AgentBed bed, ITestOutputHelper output)
{
    private const string App = "bluegreen";
    private const string Hostname = "bluegreen.e2e.example.com";

    /// <summary>The route's public port (the tests' policy allows it); the edge serves it on a free local port.</summary>
    private const int PublicPort = 5432;

    /// <summary>Each phase's limit: a boot under TCG takes 3-6 s, more on a loaded machine.</summary>
    private static readonly TimeSpan Phase = TimeSpan.FromSeconds(90);

    /// <summary>Added to the bed's manifest of process web (serve.sh on port 8080): its health check and the route.</summary>
    private static readonly string Manifest = $$"""

        [processes.web.healthcheck]
        tcp = 8080
        interval = "2s"
        timeout = "2s"

        [[routes]]
        hostname = "{{Hostname}}"
        listen_port = {{PublicPort}}
        protocol = "tcp_raw"
        process = "web"
        backend_port = 8080
        """;

    [QemuFact]
    public async Task A_blue_green_rollout_switches_the_edge_without_failing_a_client_connection()
    {
        var ct = CancellationToken.None;
        var log = new CapturedLog();
        using var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(log));
        using var edgeClient = new TrcClient(bed.Server.Address, bed.Server.AdminToken);
        var port = FreePort();
        await using var edge = await EdgeHost.StartAsync(new EdgeHostOptions
        {
            ControlPlane = new RouteSource(edgeClient),
            InitialRoutes = await edgeClient.GetEdgeRoutesAsync(0, ct),
            ListenPlan = new EdgeListenPlan { Addresses = [IPAddress.Loopback], PortMap = new Dictionary<int, int> { [PublicPort] = port } },
        }, loggers, ct);
        var started = DateTimeOffset.UtcNow;
        string Diagnostics() => $"\nedge log:\n{log}\nagent log:\n{bed.AgentLog}";

        // Release 1 serves through the edge: the route and its listener come from the deploy, the
        // backend once the instance passed its health check.
        var first = await bed.DeployAsync(App, "serve.sh", extra: Manifest, ct: ct);
        var old = await bed.WaitForStateAsync(App, first.Number, Phase, InstanceStates.Healthy);
        await UntilAsync(async () => (await ConnectAsync(port, edge)).Answer == Answer(first.Number), Phase, "release 1 answers through the edge", Diagnostics);
        output.WriteLine($"{Since(started)} release 1 (instance {old.Id}, {old.Address}) answers through the edge");

        // A client loops through the edge for the whole rollout: a new connection each time.
        var closedBefore = Enum.GetValues<CloseCause>().ToDictionary(c => c, edge.Server.Metrics.Closed);
        var macBefore = BridgeMac();
        var samples = new ConcurrentQueue<Sample>();
        using var stopClient = new CancellationTokenSource();
        var client = Task.Run(async () =>
        {
            while (!stopClient.IsCancellationRequested)
            {
                samples.Enqueue(await ConnectAsync(port, edge));
                await Task.Delay(20, CancellationToken.None);
            }
        }, CancellationToken.None);

        DeploymentView deployment;
        ReleaseView second;
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            second = await bed.DeployAsync(App, "serve.sh", extra: Manifest, ct: ct);
            var number = second.Deployment ?? (await bed.Admin.ListDeploymentsAsync(AgentBed.Org, App, "prod", ct: ct)).Items.Max(d => d.Number);
            output.WriteLine($"{Since(started)} release {second.Number} deployed (deployment {number})");
            deployment = await WaitForDeploymentAsync(number, Diagnostics);
            output.WriteLine($"{Since(started)} deployment {number} {deployment.Status}: switched {deployment.SwitchedAt:HH:mm:ss.fff}, finished {deployment.FinishedAt:HH:mm:ss.fff}");
            await UntilAsync(() => Task.FromResult(samples.Any(s => s.Answer == Answer(second.Number))), Phase, "the client gets release 2 through the edge", Diagnostics);
            // The old instance is stopped (SIGTERM, grace, kill) and the client keeps going meanwhile.
            await bed.WaitForInstanceStateAsync(old.Id, TimeSpan.FromSeconds(30), InstanceStates.Stopped);
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
        }
        finally
        {
            await stopClient.CancelAsync();
            await client;
        }

        var all = samples.ToList();
        var stopAsked = await StopRequestedAtAsync(old.Id);
        var stopped = await StoppedAtAsync(old.Id);
        var timeline = Timeline(all, started, deployment, stopAsked, stopped, second.Number)
            + $"node bridge MAC: {macBefore} when the client started, {BridgeMac()} at the end\n";
        output.WriteLine(timeline);
        var context = $"\n{timeline}{Diagnostics()}";

        // The node's bridge kept its MAC while taps came and went (else guests send to a stale gateway MAC).
        Assert.True(all.All(s => s.BridgeMac == macBefore), "the bridge's MAC changed during the rollout" + context);

        // Not one connection failed: each got a whole "release-N" line and a clean end.
        var failed = all.Where(s => s.Error is not null).ToList();
        Assert.True(failed.Count == 0,
            $"{failed.Count} of {all.Count} client connections through the edge failed during the rollout: " +
            string.Join("; ", failed.Take(10).Select(f => $"{Since(started, f.Start)}: {f.Error} (edge backends then: {f.Backends})")) + context);

        // Release 1 until the switch, release 2 after it, never back.
        var answers = all.Select(s => s.Answer).ToList();
        Assert.All(answers, a => Assert.True(a == Answer(first.Number) || a == Answer(second.Number), $"unexpected answer {a}{context}"));
        var switchedAt = answers.IndexOf(Answer(second.Number));
        Assert.True(switchedAt > 0, $"the client saw release 1 first, then release 2 ({switchedAt}){context}");
        Assert.True(answers.Skip(switchedAt).All(a => a == Answer(second.Number)), $"the client got release 1 again after release 2{context}");
        Assert.True(answers.Count - switchedAt >= 5, $"the client went on with release 2 for a while ({answers.Count - switchedAt} connections){context}");

        // The rollout: switched once release 2 was ready, completed after the drain, release 1 stopped.
        Assert.Equal(RolloutStatuses.Completed, deployment.Status);
        Assert.NotNull(deployment.SwitchedAt);
        Assert.NotNull(stopAsked);
        Assert.True(stopAsked >= deployment.SwitchedAt + AgentBed.Drain - TimeSpan.FromMilliseconds(50),
            $"release 1 was asked to stop at {stopAsked:HH:mm:ss.fff}, before the {AgentBed.Drain.TotalSeconds} s drain after the switch at {deployment.SwitchedAt:HH:mm:ss.fff}{context}");
        Assert.True(all[switchedAt].Start < stopAsked,
            $"the edge first served release 2 at {all[switchedAt].Start:HH:mm:ss.fff}, after release 1 was asked to stop at {stopAsked:HH:mm:ss.fff}{context}");
        Assert.Null(FindVmm(old.Id));
        Assert.False(Directory.Exists(Path.Combine(bed.DataDir, "instances", old.Id.ToString("D"))), "the stopped instance's directory is removed");
        var now = await bed.Admin.ListInstancesAsync(AgentBed.Org, App, "prod", ct);
        Assert.DoesNotContain(now.Items, i => i.Release == first.Number && i.State is InstanceStates.Running or InstanceStates.Healthy);
        Assert.Contains(now.Items, i => i.Release == second.Number && i.State == InstanceStates.Healthy);
        // The edge closed none of them itself (no backend, drained, backend error...).
        var closedByEdge = Enum.GetValues<CloseCause>().Where(c => edge.Server.Metrics.Closed(c) > closedBefore[c]).ToList();
        Assert.True(closedByEdge.Count == 0, $"the edge closed client connections during the rollout: {string.Join(", ", closedByEdge.Select(c => $"{c} +{edge.Server.Metrics.Closed(c) - closedBefore[c]}"))}\n{edge.Server.Metrics.Render()}{context}");
    }

    /// <summary>One client connection through the edge: when, what it answered, or why it failed, and the edge's backends when it began.</summary>
    private sealed record Sample(DateTimeOffset Start, DateTimeOffset End, string? Answer, string? Error, string Backends, string BridgeMac);

    private static string Answer(int release) => "release-" + release.ToString(CultureInfo.InvariantCulture);

    /// <summary>Connects through the edge, reads one line and then the end; an error unless that is one "release-N" line and a clean close.</summary>
    private async Task<Sample> ConnectAsync(int port, EdgeHost edge)
    {
        var backends = string.Join(",", edge.Server.Table.Routes.SelectMany(r => r.Backends));
        var mac = BridgeMac();
        var start = DateTimeOffset.UtcNow;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            using var tcp = new TcpClient(AddressFamily.InterNetwork);
            await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            using var reader = new StreamReader(tcp.GetStream(), Encoding.ASCII);
            var line = await reader.ReadLineAsync(timeout.Token);
            var rest = line is null ? "" : await reader.ReadToEndAsync(timeout.Token);
            var error = line is null ? "closed before a line"
                : !line.StartsWith("release-", StringComparison.Ordinal) ? $"answered \"{line}\""
                : rest.Length > 0 ? $"more after the line: \"{rest}\""
                : null;
            return new Sample(start, DateTimeOffset.UtcNow, error is null ? line : null, error, backends, mac);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            return new Sample(start, DateTimeOffset.UtcNow, null, $"{e.GetType().Name}: {e.Message}", backends, mac);
        }
    }

    /// <summary>The node bridge's MAC address now (the instances' gateway's link address).</summary>
    private string BridgeMac()
    {
        try
        {
            return File.ReadAllText($"/sys/class/net/{bed.Bridge}/address").Trim();
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private async Task<DeploymentView> WaitForDeploymentAsync(int number, Func<string> diagnostics)
    {
        var deadline = DateTime.UtcNow + Phase;
        DeploymentView view;
        while (true)
        {
            view = await bed.Admin.GetDeploymentAsync(AgentBed.Org, App, "prod", number);
            if (view.Status is RolloutStatuses.Completed)
            {
                return view;
            }
            Assert.True(view.Status != RolloutStatuses.Failed, $"deployment {number} failed: {view.FailureReason}{diagnostics()}");
            Assert.True(DateTime.UtcNow < deadline, $"deployment {number} not completed within {Phase.TotalSeconds} s: {view}{diagnostics()}");
            await Task.Delay(200);
        }
    }

    /// <summary>When the instance was asked to stop (its InstanceStopRequested event), or null.</summary>
    private async Task<DateTimeOffset?> StopRequestedAtAsync(Guid instance)
    {
        return (await EventsAsync(EventNames.InstanceStopRequested))
            .Where(e => EventJson.Deserialize<InstanceStopRequested>(e.Payload.GetRawText()).InstanceId == instance)
            .Select(e => (DateTimeOffset?)e.OccurredAt).FirstOrDefault();
    }

    /// <summary>Every event of a type, page by page.</summary>
    private async Task<List<EventView>> EventsAsync(string type)
    {
        var events = new List<EventView>();
        for (long after = 0; ;)
        {
            var page = await bed.Admin.GetEventsAsync(new EventQuery(After: after, Types: [type], Limit: 1000));
            if (page.Events.Count == 0)
            {
                return events;
            }
            events.AddRange(page.Events);
            after = page.Events[^1].Id;
        }
    }

    /// <summary>When the instance's agent reported it stopped, or null.</summary>
    private async Task<DateTimeOffset?> StoppedAtAsync(Guid instance)
    {
        return (await EventsAsync(EventNames.InstanceStateChanged))
            .Where(e => e.AggregateId == instance && EventJson.Deserialize<InstanceStateChanged>(e.Payload.GetRawText()).State == InstanceStates.Stopped)
            .Select(e => (DateTimeOffset?)e.OccurredAt).FirstOrDefault();
    }

    /// <summary>The client's connections grouped into runs of the same outcome, with the rollout's moments.</summary>
    private static string Timeline(List<Sample> samples, DateTimeOffset started, DeploymentView deployment, DateTimeOffset? stopAsked, DateTimeOffset? stopped, int release)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"timeline (s since the edge started; {samples.Count} client connections):");
        var marks = new List<(DateTimeOffset At, string What)>
        {
            (deployment.StartedAt, $"deployment {deployment.Number} (release {release}) started"),
        };
        if (deployment.SwitchedAt is { } switched)
        {
            marks.Add((switched, "traffic switched"));
        }
        if (stopAsked is { } stop)
        {
            marks.Add((stop, "release 1 asked to stop"));
        }
        if (stopped is { } end)
        {
            marks.Add((end, "release 1 reported stopped"));
        }
        if (deployment.FinishedAt is { } finished)
        {
            marks.Add((finished, "deployment completed"));
        }
        var rows = new List<(DateTimeOffset At, string What)>(marks);
        foreach (var run in Runs(samples))
        {
            var first = run[0];
            var what = first.Error ?? first.Answer;
            rows.Add((first.Start, $"  {run.Count} x {what} until {Since(started, run[^1].End)} (edge backends: {first.Backends}; bridge MAC {first.BridgeMac}; longest {run.Max(s => (s.End - s.Start).TotalMilliseconds):0} ms)"));
        }
        foreach (var (at, what) in rows.OrderBy(r => r.At))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{Since(started, at)} {what}");
        }
        text.AppendLine("slowest connections: " + string.Join(", ", samples.OrderByDescending(s => s.End - s.Start).Take(3)
            .Select(s => $"{(s.End - s.Start).TotalMilliseconds:0} ms from {Since(started, s.Start).Trim()} ({s.Answer ?? s.Error})")));
        return text.ToString();
    }

    private static IEnumerable<List<Sample>> Runs(List<Sample> samples)
    {
        List<Sample>? run = null;
        foreach (var s in samples)
        {
            if (run is not null && (run[0].Error ?? run[0].Answer) == (s.Error ?? s.Answer) && run[0].Backends == s.Backends && run[0].BridgeMac == s.BridgeMac)
            {
                run.Add(s);
                continue;
            }
            if (run is not null)
            {
                yield return run;
            }
            run = [s];
        }
        if (run is not null)
        {
            yield return run;
        }
    }

    private static string Since(DateTimeOffset started, DateTimeOffset? at = null) =>
        ((at ?? DateTimeOffset.UtcNow) - started).TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture).PadLeft(8);

    private static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Func<string> diagnostics)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {timeout.TotalSeconds} s: {what}{diagnostics()}");
            await Task.Delay(200);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private int? FindVmm(Guid instance)
    {
        var record = Path.Combine(bed.DataDir, "instances", instance.ToString("D"), "qemu.pid");
        if (!File.Exists(record))
        {
            return null;
        }
        var pid = int.Parse(File.ReadAllText(record).Trim(), CultureInfo.InvariantCulture);
        return HostProcess.Find(pid) is { IsAlive: true } ? pid : null;
    }

    /// <summary>The control plane as the edge's route source, as <c>trc edge --control-plane</c> wires it.</summary>
    private sealed class RouteSource(TrcClient client) : IEdgeRouteSource
    {
        public Task<EdgeRoutesView> SnapshotAsync(long after, CancellationToken ct) => client.GetEdgeRoutesAsync(after, ct);

        public async IAsyncEnumerable<long> ChangesAsync(long after, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            await foreach (var e in client.StreamEventsAsync(new EventQuery(After: after, Types: EventNames.EdgeRouting), null, ct).ConfigureAwait(false))
            {
                yield return e.Id;
            }
        }
    }

    /// <summary>The edge's log lines with their times, for failure messages.</summary>
    private sealed class CapturedLog : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

        public void Dispose()
        {
        }

        public override string ToString() => string.Join('\n', _lines);

        private sealed class Logger(CapturedLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                log._lines.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception.Message)}");
        }
    }
}
