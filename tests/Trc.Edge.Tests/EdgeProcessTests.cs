using System.Globalization;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Trc.Edge.Tests.Support;

namespace Trc.Edge.Tests;

/// <summary><c>trc edge --routes FILE</c> as a process: start, reload, metrics, memory per idle connection, stop.</summary>
public sealed class EdgeProcessTests
{
    private static readonly string TrcDll = Path.Combine(AppContext.BaseDirectory, "trc.dll");

    [Fact]
    public async Task The_edge_serves_a_routes_file_reloads_it_keeps_it_when_broken_and_serves_metrics()
    {
        await using var edge = new EdgeHarness();
        var one = edge.Backend(IPAddress.Loopback);
        var two = edge.Backend(IPAddress.Loopback);
        var port = Support.Net.FreePort();
        var metricsPort = Support.Net.FreePort();
        var routes = Path.Combine(edge.Directory, "routes.toml");
        File.WriteAllText(routes, Routes(port, one.EndPoint));

        using var process = ExternalProcess.Start("dotnet", [TrcDll, "edge", "--routes", routes, "--metrics", $"127.0.0.1:{metricsPort}"]);
        await process.WaitForOutputAsync($"metrics on http://127.0.0.1:{metricsPort}/metrics", TimeSpan.FromSeconds(30));
        Assert.Contains($"svc@127.0.0.1:{port}: 127.0.0.1:{port} -> {one.EndPoint}", process.Output);
        var listen = new IPEndPoint(IPAddress.Loopback, port);
        await RoundTripAsync(listen);
        Assert.Equal(1, one.Accepted);

        // A broken file is reported and the routes in force stay.
        File.WriteAllText(routes, "[[routes]]\nlisten = \"127.0.0.1:1\"\n");
        await process.WaitForOutputAsync("routes file not applied", TimeSpan.FromSeconds(15));
        Assert.Contains("missing hostname", process.Output);
        await RoundTripAsync(listen);
        Assert.Equal(2, one.Accepted);

        // A good change applies to new connections.
        File.WriteAllText(routes, Routes(port, two.EndPoint) + "\n# changed\n");
        await process.WaitForOutputAsync("routes file " + routes + " applied", TimeSpan.FromSeconds(15));
        await RoundTripAsync(listen);
        Assert.Equal(1, two.Accepted);

        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        Assert.Contains("# TYPE trc_edge_connections_accepted_total counter", metrics);
        Assert.Contains("trc_edge_connections_accepted_total 3", metrics);
        Assert.Contains($"trc_edge_route_connections_total{{route=\"svc@127.0.0.1:{port}\"}} 3", metrics);
        Assert.Matches($"trc_edge_route_bytes_total\\{{route=\"svc@127.0.0.1:{port}\",direction=\"client_to_backend\"\\}} [1-9]", metrics);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{metricsPort}/other")).StatusCode);

        await StopAsync(process);
    }

    [Fact]
    public async Task Ten_thousand_idle_connections_cost_bounded_memory_and_the_edge_keeps_serving()
    {
        await using var edge = new EdgeHarness();
        var backend = edge.Backend(IPAddress.Loopback, edge.Certificate("idle.example.com"));
        var port = Support.Net.FreePort();
        var routes = Path.Combine(edge.Directory, "routes.toml");
        File.WriteAllText(routes, $"""
            [settings]
            hello_timeout = "120s"
            [[routes]]
            listen = "127.0.0.1:{port}"
            hostname = "idle.example.com"
            backends = ["{backend.EndPoint}"]
            """);
        using var process = ExternalProcess.Start("dotnet", [TrcDll, "edge", "--routes", routes]);
        await process.WaitForOutputAsync("idle.example.com@", TimeSpan.FromSeconds(30));
        var listen = new IPEndPoint(IPAddress.Loopback, port);

        // Warm up, then measure: the growth of the edge's resident memory over 10,000 connections
        // that sent nothing yet (the state a slow or hostile client holds).
        await TlsRoundTripAsync(listen);
        GC.Collect();
        var before = ResidentKiB(process.ProcessId);
        var sockets = new List<Socket>(10_000);
        try
        {
            for (var i = 0; i < 10_000; i++)
            {
                sockets.Add(await Support.Net.ConnectAsync(listen));
            }
            await Task.Delay(2000);
            var after = ResidentKiB(process.ProcessId);
            var perConnection = (after - before) / 10_000.0;
            Console.WriteLine($"edge RSS {before} KiB -> {after} KiB with 10,000 idle connections: {perConnection:F2} KiB each");
            Assert.True(perConnection < 8, $"{perConnection:F2} KiB per idle connection (RSS {before} -> {after} KiB)");
            Assert.False(process.HasExited);

            await TlsRoundTripAsync(listen);
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
        await StopAsync(process);
    }

    private static string Routes(int port, IPEndPoint backend) => $"""
        [[routes]]
        name = "svc@127.0.0.1:{port}"
        listen = "127.0.0.1:{port}"
        protocol = "tcp_raw"
        backends = ["{backend}"]
        """;

    private static async Task RoundTripAsync(IPEndPoint listen)
    {
        using var socket = await Support.Net.ConnectAsync(listen);
        await using var stream = new NetworkStream(socket);
        Assert.True(await Exchange.RoundAsync(stream, 100_000, 11));
        await Exchange.EndAsync(stream);
    }

    private static async Task TlsRoundTripAsync(IPEndPoint listen)
    {
        var (stream, _) = await EdgeHarness.TlsConnectAsync(listen, "idle.example.com");
        await using (stream)
        {
            Assert.True(await Exchange.RoundAsync(stream, 10_000, 12));
            await Exchange.EndAsync(stream);
        }
    }

    private static long ResidentKiB(int pid)
    {
        var line = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    private static async Task StopAsync(ExternalProcess process)
    {
        var (code, output) = await ExternalProcess.RunAsync("kill", ["-INT", process.ProcessId.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
        Assert.True(code == 0, output);
        for (var i = 0; i < 500 && !process.HasExited; i++)
        {
            await Task.Delay(20);
        }
        Assert.True(process.HasExited, "trc edge did not stop on SIGINT:\n" + process.Output);
        Assert.Equal(0, process.ExitCode);
        Assert.Contains("trc edge: stopping", process.Output);
    }
}
