using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Trc.Edge.Tests.Tls;

/// <summary>
/// Records the first bytes a real TLS client sends: starts it against a listener on a free loopback
/// port, reads its records until the first handshake message is complete (framing read here, not by
/// the reader under test), then kills the client.
/// </summary>
public static class HelloCapture
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Runs <paramref name="executable"/> with the arguments (<c>{port}</c> replaced) and returns what it sent.</summary>
    public static async Task<byte[]> CaptureAsync(string executable, IEnumerable<string> arguments)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var start = new ProcessStartInfo(executable)
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument.Replace("{port}", port, StringComparison.Ordinal));
            }
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"{executable} did not start");
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            try
            {
                using var client = await listener.AcceptTcpClientAsync(timeout.Token);
                return await ReadFirstHandshakeMessageAsync(client.GetStream(), timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{executable} sent no complete hello within {Timeout.TotalSeconds} s");
            }
            finally
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
                await process.WaitForExitAsync(CancellationToken.None);
                try
                {
                    // The client's output is not needed; drained so a chatty client never blocks on a full pipe.
                    await Task.WhenAll(stdout, stderr);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }
        finally
        {
            listener.Stop();
        }
    }

    private static async Task<byte[]> ReadFirstHandshakeMessageAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var received = new List<byte>();
        var handshakeBytes = 0;
        var handshakeLength = -1;
        var header = new byte[5];
        while (handshakeLength < 0 || handshakeBytes < handshakeLength)
        {
            await stream.ReadExactlyAsync(header, cancellationToken);
            var payload = new byte[BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(3))];
            await stream.ReadExactlyAsync(payload, cancellationToken);
            received.AddRange(header);
            received.AddRange(payload);
            handshakeBytes += payload.Length;
            if (handshakeLength < 0 && handshakeBytes >= 4)
            {
                var handshake = Records.Unwrap([.. received]);
                handshakeLength = 4 + ((handshake[1] << 16) | (handshake[2] << 8) | handshake[3]);
            }
        }
        return [.. received];
    }
}

/// <summary>A theory that runs only where the named executable is installed, and says so when it is not.</summary>
public sealed class RequiresExecutableTheoryAttribute : TheoryAttribute
{
    public RequiresExecutableTheoryAttribute(string path)
    {
        if (!File.Exists(path))
        {
            Skip = $"{path} is not installed: real-client captures skipped";
        }
    }
}
