using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using Trc.Cli.Dev;

namespace Trc.Cli.Tests.Dev;

/// <summary>
/// <c>trc dev</c>'s command line through the in-process CLI (a bad option is refused before
/// anything starts), and the edge's port map.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DevCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("trc-dev-command-");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>
    /// Runs <c>trc dev ARGS</c> with a data directory that cannot be created (it would be under a
    /// regular file): should an option slip through, the run stops there, not after starting a
    /// server, an agent and taps on this machine.
    /// </summary>
    private async Task<(CliResult Result, string DataDir)> RunDevAsync(params string[] args)
    {
        var blocker = Path.Combine(_dir.FullName, "a-file");
        await File.WriteAllTextAsync(blocker, "not a directory\n");
        var dataDir = Path.Combine(blocker, "dev");
        return (await RunTrcAsync(["dev", "--data-dir", dataDir, "--listen", "http://127.0.0.1:0", .. args]), dataDir);
    }

    /// <summary>Runs a trc command line in-process, with this test's directory as home and working directory.</summary>
    private async Task<CliResult> RunTrcAsync(string[] args)
    {
        using var input = new MemoryStream();
        using var output = new MemoryStream();
        using var error = new StringWriter { NewLine = "\n" };
        var console = new CliConsole(input, output, error)
        {
            GetEnvironmentVariable = name => name == "HOME" ? _dir.FullName : null,
            WorkingDirectory = _dir.FullName,
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var code = await TrcCli.RunAsync(args, console, timeout.Token);
        return new CliResult(code, output.ToArray(), error.ToString());
    }

    [Theory]
    [InlineData("--registry-port", "0", "--registry-port 0: not a TCP port (1-65535)")]
    [InlineData("--registry-port", "65536", "--registry-port 65536: not a TCP port (1-65535)")]
    [InlineData("--edge-listen", "not-an-ip", "--edge-listen \"not-an-ip\": not an IP address")]
    [InlineData("--edge-listen", "fe80::1%eth0", "--edge-listen \"fe80::1%eth0\": not an IP address")]
    [InlineData("--memory", "12XB", "--memory 12XB: '12XB' is not a size")]
    public async Task A_bad_option_value_is_refused_with_a_message_naming_the_option_and_nothing_starts(string option, string value, string message)
    {
        var (result, dataDir) = await RunDevAsync(option, value);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.StartsWith($"trc dev: {message}", result.Stderr, StringComparison.Ordinal);
        Assert.Single(result.Stderr.TrimEnd('\n').Split('\n'));
        Assert.Empty(result.Stdout);
        Assert.False(Directory.Exists(dataDir));
    }

    /// <summary>trc dev on a real directory (as root; Preflight passes here): what it refuses before it starts anything.</summary>
    private Task<CliResult> RunDevOnAsync(string dataDir) =>
        RunTrcAsync(["dev", "--data-dir", dataDir, "--listen", "http://127.0.0.1:0", "--registry-port", "1"]);

    [RootFact]
    public async Task A_data_directory_another_user_owns_is_refused()
    {
        var dataDir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "theirs")).FullName;
        Assert.Equal(0, RootOnly.Chown(dataDir, 65534));

        var result = await RunDevOnAsync(dataDir);

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.Contains($"trc dev: {dataDir} belongs to uid 65534, not to you", result.Stderr);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dataDir));
    }

    [RootFact]
    public async Task A_second_trc_dev_on_the_same_directory_is_refused()
    {
        var dataDir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "busy")).FullName;
        // As a running trc dev holds it.
        using var held = new FileStream(Path.Combine(dataDir, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);

        var result = await RunDevOnAsync(dataDir);

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.Contains($"trc dev: another trc dev runs on {dataDir}", result.Stderr);
        Assert.Equal([".lock"], Directory.EnumerateFileSystemEntries(dataDir).Select(Path.GetFileName));
    }


    [Fact]
    public async Task An_unknown_acceleration_is_a_usage_error_listing_the_choices()
    {
        var (result, dataDir) = await RunDevAsync("--accel", "bogus");

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("'bogus'", result.Stderr);
        Assert.DoesNotContain("?", result.Stderr); // the parser's line breaks become spaces, not question marks
        foreach (var choice in new[] { "'auto'", "'kvm'", "'tcg'" })
        {
            Assert.Contains(choice, result.Stderr);
        }
        Assert.Empty(result.Stdout);
        Assert.False(Directory.Exists(dataDir));
    }

    [Fact]
    public async Task The_help_names_every_option_with_an_example()
    {
        var (result, _) = await RunDevAsync("--help");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        foreach (var option in new[] { "--data-dir", "--listen", "--edge-listen", "--registry-port", "--guest-assets", "--accel", "--memory", "sudo trc dev" })
        {
            Assert.Contains(option, result.Stdout);
        }
    }

    // ---- the edge's port map ---------------------------------------------------------------------

    /// <summary>An address of 127.0.0.0/8 no other test uses: binding 443 on it tells about this test alone.</summary>
    private static IPAddress PrivateLoopback()
    {
        Span<byte> bytes = stackalloc byte[3];
        RandomNumberGenerator.Fill(bytes);
        return new IPAddress([127, bytes[0], bytes[1], (byte)Math.Clamp((int)bytes[2], 2, 254)]);
    }

    [Fact]
    public void Ports_443_and_80_stay_as_they_are_when_they_can_be_bound()
    {
        Assert.True(Environment.IsPrivilegedProcess, "this test runs as root, as trc dev does: a user process may not bind 443");

        var map = DevCommand.PortMap([PrivateLoopback()]);

        Assert.Empty(map);
    }

    [Fact]
    public void Port_443_moves_to_10443_when_another_socket_listens_there()
    {
        var address = PrivateLoopback();
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        other.Bind(new IPEndPoint(address, 443));
        other.Listen();

        var map = DevCommand.PortMap([address]);

        Assert.Equal(new Dictionary<int, int> { [443] = 10443 }, map);
    }

    [Fact]
    public void One_address_where_80_is_taken_moves_80_for_all_of_them()
    {
        var free = PrivateLoopback();
        var taken = PrivateLoopback();
        using var other = new TcpListener(taken, 80);
        other.Start();

        var map = DevCommand.PortMap([free, taken]);

        Assert.Equal(new Dictionary<int, int> { [80] = 10080 }, map);
        Assert.Empty(DevCommand.PortMap([free]));
    }
}
