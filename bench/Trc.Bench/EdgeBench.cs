using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Trc.Bench;

/// <summary>
/// bench/run edge: trc edge against HAProxy 2.6 with the same routes (SNI to a backend, with and
/// without PROXY v2), the same client and the same backends, measured in time-adjacent pairs:
/// new connections per second, bulk throughput both ways, added latency, memory per idle connection.
/// </summary>
/// <remarks>
/// <para>
/// The client and the backends run in this process on raw sockets with reused buffers. On a 2-core
/// machine they share the CPU with the proxy under test; that is the same for both proxies, so the
/// ratios are fair, and the proxies' own CPU time (from /proc) is printed per connection and per GiB,
/// which other load on the machine disturbs much less than rates.
/// </para>
/// <para>
/// For experiments (not for bench/run's record): TRC_BENCH_TRC_DLL runs another build of trc,
/// TRC_BENCH_TRC_ENV="K=V ..." gives the trc process runtime settings (the report then says
/// EXPERIMENT), TRC_BENCH_EDGE_PARTS picks some of "rate bulk latency idle".
/// </para>
/// </remarks>
public static class EdgeBench
{
    private const int HelloBytes = 1800;
    private const int Loops = 16;
    private const int RatePairs = 10;
    private const int BulkPairs = 6;
    private const long BulkBytes = 1L << 30;
    private const int LatencySamples = 5000;
    private const int PingSamples = 10_000;
    private const int LatencyRounds = 10;
    private const int PingBytes = 64;
    private const int IdleConnections = 5000;
    private const int ClientChunk = 256 * 1024;
    private static readonly TimeSpan RoundWarmup = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan RateRound = TimeSpan.FromSeconds(1.5);

    public static async Task<int> RunAsync()
    {
        var trcDll = Path.GetFullPath(Environment.GetEnvironmentVariable("TRC_BENCH_TRC_DLL") ?? "src/Trc.Cli/bin/Release/net10.0/trc.dll");
        var haproxy = new[] { "/usr/sbin/haproxy", "/usr/bin/haproxy" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("haproxy is not installed (scripts/install-test-deps installs it)");
        if (!File.Exists(trcDll))
        {
            throw new InvalidOperationException($"{trcDll} is missing: dotnet build src/Trc.Cli -c Release (bench/run does)");
        }
        var trcEnvironment = (Environment.GetEnvironmentVariable("TRC_BENCH_TRC_ENV") ?? "")
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(kv => kv.Split('=', 2))
            .ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : "");
        var parts = (Environment.GetEnvironmentVariable("TRC_BENCH_EDGE_PARTS") ?? "rate bulk latency idle").Split(' ', ',');

        var work = Directory.CreateTempSubdirectory("trc-bench-edge-");
        var result = new Dictionary<string, object>();
        try
        {
            using var connBackend = new BenchBackend(BackendKind.Answer, proxyV2: false);
            using var ppv2Backend = new BenchBackend(BackendKind.Answer, proxyV2: true);
            using var bulkBackend = new BenchBackend(BackendKind.Session, proxyV2: false);
            var hellos = new Hellos(
                await BenchHello.CaptureAsync("conn.bench.test", HelloBytes),
                await BenchHello.CaptureAsync("ppv2.bench.test", HelloBytes),
                await BenchHello.CaptureAsync("bulk.bench.test", HelloBytes));

            var trcEndpoint = new IPEndPoint(IPAddress.Loopback, FreePort());
            var haproxyEndpoint = new IPEndPoint(IPAddress.Loopback, FreePort());
            var routes = Path.Combine(work.FullName, "edge-routes.toml");
            var config = Path.Combine(work.FullName, "haproxy.cfg");
            await File.WriteAllTextAsync(routes, TrcRoutes(trcEndpoint, connBackend, ppv2Backend, bulkBackend));
            await File.WriteAllTextAsync(config, HaproxyConfig(haproxyEndpoint, connBackend, ppv2Backend, bulkBackend));
            var peers = new Peers(
                () => ProxyProcess.StartAsync("trc", "dotnet", [trcDll, "edge", "--routes", routes], trcEndpoint, trcEnvironment),
                () => ProxyProcess.StartAsync("haproxy", haproxy, ["-f", config, "-db"], haproxyEndpoint));

            Console.WriteLine($"trc edge ({Path.GetRelativePath(Environment.CurrentDirectory, trcDll)}) vs {HaproxyVersion(haproxy)} (mode tcp, nbthread {Environment.ProcessorCount}, no splicing, no logging), both on 127.0.0.1 with the same 3 routes by SNI.");
            Console.WriteLine($"Client and backends: this process, raw sockets, reused buffers. They share the {Environment.ProcessorCount} cores with the proxy under test, the same for both proxies: the ratios are fair, the absolute rates are this machine's.");
            Console.WriteLine($"ClientHello: {HelloBytes} bytes, one record: a real SslStream (OpenSSL) hello with SNI and ALPN, padded (RFC 7685) to the size of a browser hello with a post-quantum key share.");
            if (trcEnvironment.Count > 0)
            {
                var settings = string.Join(" ", trcEnvironment.Select(kv => $"{kv.Key}={kv.Value}"));
                Console.WriteLine($"EXPERIMENT: trc runs with {settings} (TRC_BENCH_TRC_ENV); not the default configuration.");
                result["trc_env"] = settings;
            }
            Console.WriteLine("Each figure is measured in time-adjacent pairs (trc, HAProxy; the order alternates) and the ratio is the median of the pairs' ratios (this VM's speed drifts).");
            Console.WriteLine();

            await using (var trc = await peers.StartTrc())
            await using (var ha = await peers.StartHaproxy())
            {
                // Warm-up: JIT tiers in trc, pools and thread pools in both.
                foreach (var p in new[] { trc, ha })
                {
                    await ConnRateRoundAsync(p, hellos.Conn, TimeSpan.FromSeconds(2));
                    await ConnRateRoundAsync(p, hellos.ProxyV2, TimeSpan.FromSeconds(1));
                    await BulkRoundAsync(p, hellos.Bulk, 256L << 20);
                }
                if (parts.Contains("rate"))
                {
                    await ConnectionRatesAsync(trc, ha, hellos, result);
                }
                if (parts.Contains("bulk"))
                {
                    await ThroughputAsync(trc, ha, hellos, result);
                }
                if (parts.Contains("latency"))
                {
                    await LatencyAsync(trc, ha, hellos, connBackend, bulkBackend, result);
                }
            }
            if (parts.Contains("idle"))
            {
                await IdleMemoryAsync(peers, hellos, bulkBackend, result);
            }

            var backendErrors = connBackend.Errors + ppv2Backend.Errors + bulkBackend.Errors;
            if (backendErrors > 0)
            {
                Console.WriteLine($"Backend errors (missing PROXY header, short upload, bad command): {backendErrors}");
            }
            result["backend_errors"] = backendErrors;
            result["hello_bytes"] = HelloBytes;
            result["client_loops"] = Loops;
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>The three hellos, one per route: the same size, differing in the SNI name (and random bytes).</summary>
    private sealed record Hellos(byte[] Conn, byte[] ProxyV2, byte[] Bulk);

    private sealed record Peers(Func<Task<ProxyProcess>> StartTrc, Func<Task<ProxyProcess>> StartHaproxy);

    private static async Task ConnectionRatesAsync(ProxyProcess trc, ProxyProcess ha, Hellos hellos, Dictionary<string, object> result)
    {
        Console.WriteLine($"New connections per second: {Loops} client loops, each: connect, send the {HelloBytes}-byte hello, read the backend's {BenchBackend.AnswerBytes}-byte answer to EOF (the backend closes), close.");
        Console.WriteLine($"{RatePairs} pairs of {RateRound.TotalSeconds:0.0} s rounds (after {RoundWarmup.TotalMilliseconds:0} ms of load each). CPU: user+system time per connection, of the proxy process and of this one.");
        foreach (var (label, key, hello) in new[] { ("SNI", "conn_rate", hellos.Conn), ("SNI + PROXY v2", "conn_rate_pp2", hellos.ProxyV2) })
        {
            var pairs = await PairsAsync(RatePairs, trc, ha, p => ConnRateRoundAsync(p, hello, RateRound));
            Console.WriteLine($"  {label,-15} trc {pairs.TrcMedian,7:F0}/s  HAProxy {pairs.HaMedian,7:F0}/s  ratio {pairs.Ratio:F2}  (pairs {pairs.RatioList}){pairs.ErrorNote}");
            Console.WriteLine($"  {"",-15} proxy CPU per connection: trc {pairs.TrcCpu,5:F1} µs  HAProxy {pairs.HaCpu,5:F1} µs  (ratio {pairs.TrcCpu / pairs.HaCpu:F2}; cores busy {pairs.TrcCores:F2} / {pairs.HaCores:F2})");
            Console.WriteLine($"  {"",-15} client+backend CPU per connection: with trc {pairs.TrcSelf,5:F1} µs  with HAProxy {pairs.HaSelf,5:F1} µs; other load on the machine: {pairs.Other:F2} cores");
            result[$"{key}_ratio"] = Math.Round(pairs.Ratio, 3);
            result[$"trc_{key}_per_s"] = Math.Round(pairs.TrcMedian);
            result[$"haproxy_{key}_per_s"] = Math.Round(pairs.HaMedian);
            result[$"trc_{key}_cpu_us"] = Math.Round(pairs.TrcCpu, 1);
            result[$"haproxy_{key}_cpu_us"] = Math.Round(pairs.HaCpu, 1);
        }
        Console.WriteLine();
    }

    private static async Task ThroughputAsync(ProxyProcess trc, ProxyProcess ha, Hellos hellos, Dictionary<string, object> result)
    {
        Console.WriteLine($"Bulk throughput: one connection uploads {BulkBytes >> 20} MiB (until the backend acknowledges the last byte), then another downloads {BulkBytes >> 20} MiB; {ClientChunk >> 10} KiB client writes.");
        Console.WriteLine($"{BulkPairs} pairs; the figure is both directions' bytes over both transfers' time. CPU: the proxy's time per GiB forwarded.");
        var bulk = await PairsAsync(BulkPairs, trc, ha, p => BulkRoundAsync(p, hellos.Bulk, BulkBytes));
        Console.WriteLine($"  trc      {bulk.TrcMedian,6:F0} MiB/s (up {Stats.Median(bulk.Trc.Select(r => r.Up)),5:F0}, down {Stats.Median(bulk.Trc.Select(r => r.Down)),5:F0})   CPU {bulk.TrcCpu,4:F0} ms/GiB");
        Console.WriteLine($"  HAProxy  {bulk.HaMedian,6:F0} MiB/s (up {Stats.Median(bulk.Ha.Select(r => r.Up)),5:F0}, down {Stats.Median(bulk.Ha.Select(r => r.Down)),5:F0})   CPU {bulk.HaCpu,4:F0} ms/GiB");
        Console.WriteLine($"  ratio {bulk.Ratio:F2}  (pairs {bulk.RatioList}){bulk.ErrorNote}");
        result["throughput_ratio"] = Math.Round(bulk.Ratio, 3);
        result["trc_throughput_mib_s"] = Math.Round(bulk.TrcMedian);
        result["haproxy_throughput_mib_s"] = Math.Round(bulk.HaMedian);
        result["trc_bulk_cpu_ms_per_gib"] = Math.Round(bulk.TrcCpu);
        result["haproxy_bulk_cpu_ms_per_gib"] = Math.Round(bulk.HaCpu);
        Console.WriteLine();
    }

    private static async Task LatencyAsync(ProxyProcess trc, ProxyProcess ha, Hellos hellos, BenchBackend answer, BenchBackend echo, Dictionary<string, object> result)
    {
        Console.WriteLine($"Added latency of a new connection (the headline p50/p99): connect + {HelloBytes}-byte hello + first byte of the backend's answer, one client, blocking sockets;");
        Console.WriteLine($"{LatencySamples} samples each, direct / trc / HAProxy interleaved (rotating order). Added = the proxy's percentile minus the direct one, computed in each of");
        Console.WriteLine($"{LatencyRounds} consecutive rounds (time-adjacent, like the pairs above); the figure is the median over the rounds, so a burst of outside load in one round does not decide it.");
        var load = LoadMeter.Start(trc, ha);
        var setup = await Task.Factory.StartNew(() => SetupLatency([answer.Endpoint, trc.Endpoint, ha.Endpoint], hellos.Conn, LatencySamples), TaskCreationOptions.LongRunning);
        ReportLatency(setup, "", result);
        Console.WriteLine($"  other load on the machine meanwhile: {load.OtherCores():F2} cores");
        Console.WriteLine($"Added latency on a live connection: {PingBytes}-byte ping-pongs through an established connection to an echo backend, {PingSamples} samples each, interleaved, same rounds.");
        load = LoadMeter.Start(trc, ha);
        var ping = await Task.Factory.StartNew(() => PingLatency([echo.Endpoint, trc.Endpoint, ha.Endpoint], hellos.Bulk, PingSamples), TaskCreationOptions.LongRunning);
        ReportLatency(ping, "pingpong_", result);
        Console.WriteLine($"  other load on the machine meanwhile: {load.OtherCores():F2} cores");
        Console.WriteLine();
    }

    private static async Task IdleMemoryAsync(Peers peers, Hellos hellos, BenchBackend session, Dictionary<string, object> result)
    {
        Console.WriteLine($"Memory per idle connection: RSS delta of the proxy process over {IdleConnections} connections, each proxy freshly started and warmed");
        Console.WriteLine("with 1 s of connections, RSS read once it has settled; the proxy's descriptor count confirms it holds them all.");
        foreach (var (label, key, hello) in new[] { ("sent nothing", "idle_conn_kib", (byte[]?)null), ("forwarded, quiet", "idle_fwd_conn_kib", hellos.Bulk) })
        {
            var line = $"  {label,-17}";
            foreach (var (name, start) in new[] { ("trc", peers.StartTrc), ("HAProxy", peers.StartHaproxy) })
            {
                await using var p = await start();
                await ConnRateRoundAsync(p, hellos.Conn, TimeSpan.FromSeconds(1));
                var idle = await IdleAsync(p, hello, hello is null ? null : session, IdleConnections);
                line += $"  {name} {idle.KiB,5:F2} KiB/conn (RSS {idle.Before / 1024.0:F1} -> {idle.After / 1024.0:F1} MiB, {idle.Held} sockets held)";
                result[name == "trc" ? key : $"haproxy_{key}"] = Math.Round(idle.KiB, 2);
            }
            Console.WriteLine(line);
        }
        Console.WriteLine("  (\"sent nothing\": accepted, waiting for a hello; \"forwarded, quiet\": hello forwarded, backend connected, no byte since.)");
        Console.WriteLine();
    }

    /// <summary>One round against one proxy: the figure, the proxy's CPU per unit and cores busy, and failed operations.</summary>
    private sealed record Round(double Value, double CpuPerUnit, double Cores, long Errors, double Up = 0, double Down = 0, double SelfPerUnit = 0, double OtherCores = 0);

    private sealed record Pairs(List<Round> Trc, List<Round> Ha, List<double> Ratios)
    {
        public double Ratio => Stats.Median(Ratios);

        public double TrcMedian => Stats.Median(Trc.Select(r => r.Value));

        public double HaMedian => Stats.Median(Ha.Select(r => r.Value));

        public double TrcCpu => Stats.Median(Trc.Select(r => r.CpuPerUnit));

        public double HaCpu => Stats.Median(Ha.Select(r => r.CpuPerUnit));

        public double TrcCores => Stats.Median(Trc.Select(r => r.Cores));

        public double HaCores => Stats.Median(Ha.Select(r => r.Cores));

        public double TrcSelf => Stats.Median(Trc.Select(r => r.SelfPerUnit));

        public double HaSelf => Stats.Median(Ha.Select(r => r.SelfPerUnit));

        public double Other => Stats.Median(Trc.Concat(Ha).Select(r => r.OtherCores));

        public string RatioList => string.Join(", ", Ratios.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)));

        public string ErrorNote
        {
            get
            {
                var t = Trc.Sum(r => r.Errors);
                var h = Ha.Sum(r => r.Errors);
                return t + h == 0 ? "" : $"   FAILED operations: trc {t}, HAProxy {h}";
            }
        }
    }

    private static async Task<Pairs> PairsAsync(int pairs, ProxyProcess trc, ProxyProcess ha, Func<ProxyProcess, Task<Round>> measure)
    {
        var t = new List<Round>();
        var h = new List<Round>();
        var ratios = new List<double>();
        for (var i = 0; i < pairs; i++)
        {
            Round a, b;
            if (i % 2 == 0)
            {
                a = await measure(trc);
                b = await measure(ha);
            }
            else
            {
                b = await measure(ha);
                a = await measure(trc);
            }
            t.Add(a);
            h.Add(b);
            ratios.Add(a.Value / b.Value);
        }
        return new Pairs(t, h, ratios);
    }

    /// <summary>
    /// <see cref="Loops"/> loops of connect, hello, read the answer to EOF, close, for
    /// <see cref="RoundWarmup"/> plus <paramref name="duration"/>; connections completed per second
    /// in the second part. A connection whose answer is not exactly the backend's is an error.
    /// </summary>
    private static async Task<Round> ConnRateRoundAsync(ProxyProcess proxy, byte[] hello, TimeSpan duration)
    {
        var phase = 0; // 0 warm-up, 1 counting, 2 stopping
        long done = 0;
        long errors = 0;
        var sockets = new Socket?[Loops];
        var target = proxy.Endpoint;

        async Task LoopAsync(int slot)
        {
            var buffer = new byte[512];
            while (Volatile.Read(ref phase) < 2)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                Volatile.Write(ref sockets[slot], s);
                var got = 0;
                try
                {
                    await s.ConnectAsync(target, CancellationToken.None);
                    await s.SendAsync(hello, SocketFlags.None, CancellationToken.None);
                    int n;
                    while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, CancellationToken.None)) > 0)
                    {
                        got += n;
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    got = -1;
                }
                finally
                {
                    s.Dispose();
                }
                if (Volatile.Read(ref phase) == 1)
                {
                    Interlocked.Increment(ref got == BenchBackend.AnswerBytes ? ref done : ref errors);
                }
            }
        }

        var loops = Enumerable.Range(0, Loops).Select(i => Task.Run(() => LoopAsync(i))).ToArray();
        await Task.Delay(RoundWarmup);
        var cpu = proxy.Cpu();
        var self = Process.GetCurrentProcess().TotalProcessorTime;
        var machine = MachineTicks();
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref phase, 1);
        await Task.Delay(duration);
        Volatile.Write(ref phase, 2);
        var count = Interlocked.Read(ref done);
        var elapsed = clock.Elapsed.TotalSeconds;
        var used = (proxy.Cpu() - cpu).TotalSeconds;
        var selfUsed = (Process.GetCurrentProcess().TotalProcessorTime - self).TotalSeconds;
        var machineAfter = MachineTicks();
        // Cores busy with anything else on this machine meanwhile (other users' builds and tests).
        var other = (machineAfter.Busy - machine.Busy) / 100.0 / elapsed - (used + selfUsed) / elapsed;
        var all = Task.WhenAll(loops);
        if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(10))) != all)
        {
            // A proxy that holds a connection forever: close the clients' sockets to end the round.
            foreach (var s in sockets)
            {
                s?.Dispose();
            }
            await all;
            errors++;
        }
        return new Round(count / elapsed, used * 1e6 / Math.Max(1, count), used / elapsed, Interlocked.Read(ref errors), SelfPerUnit: selfUsed * 1e6 / Math.Max(1, count), OtherCores: Math.Max(0, other));
    }

    /// <summary>Uploads, then downloads, <paramref name="bytes"/> through the proxy; MiB/s over both, and each.</summary>
    private static async Task<Round> BulkRoundAsync(ProxyProcess proxy, byte[] hello, long bytes)
    {
        var chunk = new byte[ClientChunk];
        var cpu = proxy.Cpu();
        double up, down;
        long errors = 0;
        using (var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true })
        {
            var clock = Stopwatch.StartNew();
            await s.ConnectAsync(proxy.Endpoint);
            await s.SendAsync(Command(hello, 'U', bytes), SocketFlags.None);
            for (var left = bytes; left > 0;)
            {
                var n = (int)Math.Min(chunk.Length, left);
                await s.SendAsync(chunk.AsMemory(0, n), SocketFlags.None);
                left -= n;
            }
            if (await s.ReceiveAsync(chunk.AsMemory(0, 1), SocketFlags.None) != 1)
            {
                errors++;
            }
            up = bytes / clock.Elapsed.TotalSeconds;
        }
        using (var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true })
        {
            var clock = Stopwatch.StartNew();
            await s.ConnectAsync(proxy.Endpoint);
            await s.SendAsync(Command(hello, 'D', bytes), SocketFlags.None);
            var left = bytes;
            while (left > 0)
            {
                var n = await s.ReceiveAsync(chunk, SocketFlags.None);
                if (n == 0)
                {
                    errors++;
                    break;
                }
                left -= n;
            }
            down = bytes / clock.Elapsed.TotalSeconds;
        }
        var used = (proxy.Cpu() - cpu).TotalSeconds;
        const double MiB = 1 << 20;
        var both = 2 * bytes / (bytes / up + bytes / down);
        return new Round(both / MiB, used * 1e3 / (2.0 * bytes / (1L << 30)), 0, errors, up / MiB, down / MiB);
    }

    /// <summary>Cores used by anything but this process and the proxies, from a start to now.</summary>
    private sealed class LoadMeter
    {
        private readonly ProxyProcess[] _proxies;
        private readonly TimeSpan _proxyCpu;
        private readonly TimeSpan _self;
        private readonly long _busy;
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        private LoadMeter(ProxyProcess[] proxies)
        {
            _proxies = proxies;
            _proxyCpu = Total(proxies);
            _self = Process.GetCurrentProcess().TotalProcessorTime;
            _busy = MachineTicks().Busy;
        }

        public static LoadMeter Start(params ProxyProcess[] proxies) => new(proxies);

        public double OtherCores()
        {
            var seconds = _clock.Elapsed.TotalSeconds;
            var ours = (Total(_proxies) - _proxyCpu + (Process.GetCurrentProcess().TotalProcessorTime - _self)).TotalSeconds;
            return Math.Max(0, ((MachineTicks().Busy - _busy) / 100.0 - ours) / seconds);
        }

        private static TimeSpan Total(ProxyProcess[] proxies) => proxies.Aggregate(TimeSpan.Zero, (sum, p) => sum + p.Cpu());
    }

    /// <summary>All CPUs' busy and total ticks (/proc/stat, 100 per second): busy is everything but idle, iowait and steal.</summary>
    private static (long Busy, long Total) MachineTicks()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var total = fields.Sum();
        return (total - fields[3] - fields[4] - fields[7], total);
    }

    private static byte[] Command(byte[] hello, char op, long argument)
    {
        var bytes = new byte[hello.Length + 9];
        hello.CopyTo(bytes, 0);
        bytes[hello.Length] = (byte)op;
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(hello.Length + 1), argument);
        return bytes;
    }

    /// <summary>Microseconds from connect to the first answer byte, per target (index 0 is the direct connection).</summary>
    private static List<double>[] SetupLatency(IPEndPoint[] targets, byte[] hello, int samples)
    {
        var results = targets.Select(_ => new List<double>(samples)).ToArray();
        var buffer = new byte[512];
        const int warmup = 300;
        for (var i = -warmup; i < samples; i++)
        {
            for (var k = 0; k < targets.Length; k++)
            {
                var t = (i + warmup + k) % targets.Length;
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                var start = Stopwatch.GetTimestamp();
                s.Connect(targets[t]);
                s.Send(hello);
                var n = s.Receive(buffer);
                var us = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                while (n > 0)
                {
                    n = s.Receive(buffer);
                }
                if (i >= 0)
                {
                    results[t].Add(us);
                }
            }
        }
        return results;
    }

    /// <summary>Microseconds per ping-pong on an established connection, per target (index 0 is direct).</summary>
    private static List<double>[] PingLatency(IPEndPoint[] targets, byte[] hello, int samples)
    {
        var results = targets.Select(_ => new List<double>(samples)).ToArray();
        var sockets = targets.Select(t =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            s.Connect(t);
            s.Send(Command(hello, 'E', PingBytes));
            return s;
        }).ToArray();
        try
        {
            var message = new byte[PingBytes];
            var answer = new byte[PingBytes];
            const int warmup = 1000;
            for (var i = -warmup; i < samples; i++)
            {
                for (var k = 0; k < targets.Length; k++)
                {
                    var t = (i + warmup + k) % targets.Length;
                    var start = Stopwatch.GetTimestamp();
                    sockets[t].Send(message);
                    for (var got = 0; got < PingBytes;)
                    {
                        var n = sockets[t].Receive(answer, got, PingBytes - got, SocketFlags.None);
                        if (n == 0)
                        {
                            throw new IOException("the echo connection closed");
                        }
                        got += n;
                    }
                    if (i >= 0)
                    {
                        results[t].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                    }
                }
            }
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
        return results;
    }

    /// <summary>
    /// Prints and records added p50/p99 per proxy: per round (each target's samples cut into
    /// <see cref="LatencyRounds"/> consecutive parts, which cover the same time for all targets),
    /// the proxy's percentile minus the direct one; then the median over the rounds.
    /// </summary>
    private static void ReportLatency(List<double>[] samples, string prefix, Dictionary<string, object> result)
    {
        List<double> Part(int target, int round)
        {
            var size = samples[target].Count / LatencyRounds;
            return samples[target].GetRange(round * size, size);
        }
        List<double> Added(int target, double p) =>
            Enumerable.Range(0, LatencyRounds).Select(r => Stats.Percentile(Part(target, r), p) - Stats.Percentile(Part(0, r), p)).ToList();
        string List(List<double> values) => string.Join(", ", values.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)));

        Console.WriteLine($"  direct   all samples p50 {Stats.Percentile(samples[0], 50),6:F1} µs  p99 {Stats.Percentile(samples[0], 99),7:F1} µs");
        foreach (var (target, name, key) in new[] { (1, "trc", ""), (2, "HAProxy", "haproxy_") })
        {
            var p50 = Added(target, 50);
            var p99 = Added(target, 99);
            Console.WriteLine($"  {name,-8} all samples p50 {Stats.Percentile(samples[target], 50),6:F1} µs  p99 {Stats.Percentile(samples[target], 99),7:F1} µs   added: p50 {Stats.Median(p50),5:F1} µs  p99 {Stats.Median(p99),6:F1} µs  (rounds' added p99: {List(p99)})");
            result[$"{key}{prefix}p50_added_us"] = Math.Round(Stats.Median(p50), 1);
            result[$"{key}{prefix}p99_added_us"] = Math.Round(Stats.Median(p99), 1);
        }
    }

    /// <summary>
    /// Opens <paramref name="n"/> connections to the proxy (sending <paramref name="hello"/> when
    /// given, and then waiting until the backend has them all) and returns the RSS growth per connection.
    /// </summary>
    private static async Task<(double KiB, long Before, long After, int Held)> IdleAsync(ProxyProcess proxy, byte[]? hello, BenchBackend? backend, int n)
    {
        // After the settle: the warm-up's last connections are closed by then.
        var before = await SettledRssAsync(proxy);
        var baseDescriptors = proxy.OpenDescriptors();
        var baseHellos = backend?.Preambles ?? 0;
        var sockets = new Socket?[n];
        var next = -1;
        try
        {
            await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < n)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    sockets[i] = s;
                    await s.ConnectAsync(proxy.Endpoint);
                    if (hello is not null)
                    {
                        await s.SendAsync(hello, SocketFlags.None);
                    }
                }
            })));
            // Each accepted connection is a descriptor in the proxy, two once forwarded.
            // (HAProxy closes a few descriptors of its own on the way: some slack.)
            var want = baseDescriptors + (hello is null ? n : 2 * n) - 20;
            var clock = Stopwatch.StartNew();
            while ((proxy.OpenDescriptors() < want || (backend is not null && backend.Preambles < baseHellos + n)) && clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(100);
            }
            var held = proxy.OpenDescriptors() - baseDescriptors;
            var after = await SettledRssAsync(proxy);
            return ((after - before) / (double)n, before, after, held);
        }
        finally
        {
            foreach (var s in sockets)
            {
                s?.Dispose();
            }
        }
    }

    private static async Task<long> SettledRssAsync(ProxyProcess proxy)
    {
        await Task.Delay(500);
        var last = proxy.RssKiB();
        for (var i = 0; i < 20; i++)
        {
            await Task.Delay(250);
            var now = proxy.RssKiB();
            if (Math.Abs(now - last) <= Math.Max(64, last / 500))
            {
                return now;
            }
            last = now;
        }
        return last;
    }

    private static string TrcRoutes(IPEndPoint listen, BenchBackend conn, BenchBackend ppv2, BenchBackend bulk) => $"""
        # bench/run edge: the same routes as haproxy.cfg beside it.
        [settings]
        hello_timeout = "30s"
        connect_timeout = "5s"
        idle_timeout = "1h"

        [[routes]]
        name = "conn"
        listen = "{listen}"
        hostname = "conn.bench.test"
        backends = ["{conn.Endpoint}"]

        [[routes]]
        name = "ppv2"
        listen = "{listen}"
        hostname = "ppv2.bench.test"
        proxy_protocol = "v2"
        backends = ["{ppv2.Endpoint}"]

        [[routes]]
        name = "bulk"
        listen = "{listen}"
        hostname = "bulk.bench.test"
        backends = ["{bulk.Endpoint}"]
        """;

    /// <summary>
    /// HAProxy as it would be set up for this job: TCP mode, wait for the whole ClientHello
    /// (inspect-delay, as long as trc's hello_timeout), route by req.ssl_sni. maxconn covers the idle
    /// test (two descriptors per connection stay under the 20,000 of ulimit -n); no log lines.
    /// </summary>
    private static string HaproxyConfig(IPEndPoint listen, BenchBackend conn, BenchBackend ppv2, BenchBackend bulk) => $$"""
        global
            nbthread {{Environment.ProcessorCount}}
            maxconn 9000

        defaults
            mode tcp
            maxconn 9000
            timeout connect 5s
            timeout client 1h
            timeout server 1h

        frontend edge
            bind {{listen}}
            tcp-request inspect-delay 30s
            tcp-request content accept if { req.ssl_hello_type 1 }
            use_backend conn if { req.ssl_sni -i conn.bench.test }
            use_backend ppv2 if { req.ssl_sni -i ppv2.bench.test }
            use_backend bulk if { req.ssl_sni -i bulk.bench.test }

        backend conn
            server s1 {{conn.Endpoint}}

        backend ppv2
            server s1 {{ppv2.Endpoint}} send-proxy-v2

        backend bulk
            server s1 {{bulk.Endpoint}}

        """;

    private static string HaproxyVersion(string haproxy)
    {
        using var p = Process.Start(new ProcessStartInfo(haproxy, "-v") { RedirectStandardOutput = true })!;
        var first = p.StandardOutput.ReadLine() ?? "HAProxy";
        p.WaitForExit();
        return first.Split(" - ")[0].Replace(" version", "", StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

}
