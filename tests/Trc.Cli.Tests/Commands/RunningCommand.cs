using System.Text;

namespace Trc.Cli.Tests.Commands;

/// <summary>
/// A command that keeps running (<c>--follow</c>), started with <see cref="CliSession.Start"/>: its
/// output as it is written, its errors, and Ctrl+C.
/// </summary>
public sealed class RunningCommand : IAsyncDisposable
{
    private readonly MemoryStream _input = new();
    private readonly CancellationTokenSource _ctrlC = new();

    internal RunningCommand(CliSession session, string[] args) =>
        Exit = TrcCli.RunAsync(args, session.Console(_input, Output, Error), _ctrlC.Token);

    /// <summary>Standard output, readable while the command writes it.</summary>
    public LiveOutput Output { get; } = new();

    /// <summary>Standard error.</summary>
    public StringWriter Error { get; } = new() { NewLine = "\n" };

    /// <summary>The exit code, once it ends.</summary>
    public Task<int> Exit { get; }

    /// <summary>Presses Ctrl+C and returns the exit code (within 10 s).</summary>
    public async Task<int> StopAsync()
    {
        await _ctrlC.CancelAsync();
        return await Exit.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Stops the command if it still runs (whatever its exit), then releases it.</summary>
    public async ValueTask DisposeAsync()
    {
        await _ctrlC.CancelAsync();
        try
        {
            await Exit.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
            // The test has failed already, or asserted on the exit itself.
        }
        _ctrlC.Dispose();
        await _input.DisposeAsync();
        await Output.DisposeAsync();
        await Error.DisposeAsync();
    }
}

/// <summary>Standard output that a test can read while the command is still writing it.</summary>
public sealed class LiveOutput : Stream
{
    private readonly MemoryStream _buffer = new();

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count)
    {
        lock (_buffer)
        {
            _buffer.Write(buffer, offset, count);
        }
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>The first complete line containing <paramref name="text"/>.</summary>
    public async Task<string> WaitForAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            string written;
            lock (_buffer)
            {
                written = Encoding.UTF8.GetString(_buffer.ToArray());
            }
            var line = written.Split('\n').SkipLast(1).FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            if (line is not null)
            {
                return line;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"no line with \"{text}\" within {timeout}");
    }
}
