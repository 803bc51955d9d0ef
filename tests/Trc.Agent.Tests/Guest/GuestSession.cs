using System.Diagnostics;
using System.Text;
using Trc.Agent.Guest;
using Trc.Testing.Guest;

namespace Trc.Agent.Tests.Guest;

/// <summary>A fact that boots guests: skipped, with the reason, only when QEMU or the guest kernel is absent.</summary>
public sealed class GuestBootFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when guests cannot boot here.</summary>
    public GuestBootFactAttribute()
    {
        if (GuestAssets.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A theory that boots guests: skipped, with the reason, only when QEMU or the guest kernel is absent.</summary>
public sealed class GuestBootTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when guests cannot boot here.</summary>
    public GuestBootTheoryAttribute()
    {
        if (GuestAssets.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// One booted guest seen through <see cref="ConsoleDecoder"/>: the frames so far, waits for the
/// next one that matches, commands to init, and a transcript for assertion messages.
/// </summary>
public sealed class GuestSession : IAsyncDisposable
{
    private readonly QemuGuest _qemu;
    private readonly List<ConsoleFrame> _frames = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<TimeSpan> _arrivals = [];
    private readonly Task _reader;
    private readonly SemaphoreSlim _arrived = new(0);
    private int _cursor;

    private GuestSession(QemuGuest qemu)
    {
        _qemu = qemu;
        _reader = Task.Run(ReadAsync);
    }

    /// <summary>Boots a guest.</summary>
    public static GuestSession Start(QemuGuestOptions options) => new(QemuGuest.Start(options));

    /// <summary>Every frame so far.</summary>
    public IReadOnlyList<ConsoleFrame> Frames
    {
        get
        {
            lock (_frames)
            {
                return [.. _frames];
            }
        }
    }

    /// <summary>The app's stdout lines so far.</summary>
    public IReadOnlyList<string> Stdout => [.. Frames.Where(f => f.Kind == ConsoleFrameKind.Stdout).Select(f => f.Text)];

    /// <summary>The app's stderr lines so far.</summary>
    public IReadOnlyList<string> Stderr => [.. Frames.Where(f => f.Kind == ConsoleFrameKind.Stderr).Select(f => f.Text)];

    /// <summary>Time since the guest was started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>When (since start) the frame at <paramref name="index"/> of <see cref="Frames"/> arrived.</summary>
    public TimeSpan ArrivalOf(int index)
    {
        lock (_frames)
        {
            return _arrivals[index];
        }
    }

    /// <summary>The next frame (after the last one this returned) that matches; fails with the transcript when none comes in time.</summary>
    public async Task<ConsoleFrame> WaitForAsync(Func<ConsoleFrame, bool> match, TimeSpan timeout, string what)
    {
        var deadline = _clock.Elapsed + timeout;
        while (true)
        {
            var ended = _reader.IsCompleted; // read before the scan: frames added before the end are seen
            lock (_frames)
            {
                for (; _cursor < _frames.Count; _cursor++)
                {
                    if (match(_frames[_cursor]))
                    {
                        return _frames[_cursor++];
                    }
                }
            }
            var left = deadline - _clock.Elapsed;
            if (ended || left <= TimeSpan.Zero)
            {
                throw new Xunit.Sdk.XunitException($"no {what} within {timeout.TotalSeconds:0.#} s (QEMU {(ended ? "exited" : "still running")}).\n{Transcript()}");
            }
            await _arrived.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    /// <summary>Waits for the next frame of a kind.</summary>
    public Task<ConsoleFrame> WaitForAsync(ConsoleFrameKind kind, TimeSpan timeout) => WaitForAsync(f => f.Kind == kind, timeout, kind.ToString());

    /// <summary>Waits for a stdout line.</summary>
    public Task<ConsoleFrame> WaitForStdoutAsync(string line, TimeSpan timeout) =>
        WaitForAsync(f => f.Kind == ConsoleFrameKind.Stdout && f.Text == line, timeout, $"stdout line \"{line}\"");

    /// <summary>Sends a command to init.</summary>
    public Task SendAsync(GuestCommand command, CancellationToken ct) => _qemu.SendAsync(command.Encode(), ct);

    /// <summary>Sends raw bytes to the console.</summary>
    public Task SendAsync(byte[] bytes, CancellationToken ct) => _qemu.SendAsync(bytes, ct);

    /// <summary>Takes QEMU off the CPU until <see cref="Resume"/> (<see cref="QemuGuest.Pause"/>).</summary>
    public void Pause() => _qemu.Pause();

    /// <summary>Lets QEMU run again.</summary>
    public void Resume() => _qemu.Resume();

    /// <summary>Waits for QEMU to exit (the guest powered off); fails with the transcript when it does not in time.</summary>
    public async Task WaitForPowerOffAsync(TimeSpan timeout)
    {
        try
        {
            await _qemu.WaitForExitAsync(CancellationToken.None).WaitAsync(timeout);
            await _reader.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"the guest did not power off within {timeout.TotalSeconds:0.#} s.\n{Transcript()}");
        }
    }

    /// <summary>QEMU's exit code, once it exited.</summary>
    public int? ExitCode => _qemu.ExitCode;

    /// <summary>Everything seen: frames with arrival times, then QEMU's stderr.</summary>
    public string Transcript()
    {
        var text = new StringBuilder("--- console ---\n");
        lock (_frames)
        {
            for (var i = 0; i < _frames.Count; i++)
            {
                var f = _frames[i];
                var body = f.Text.Length > 300 ? f.Text[..300] + $"... ({f.Text.Length} chars)" : f.Text;
                text.Append($"{_arrivals[i].TotalSeconds,7:0.000} {f.Kind,-7} {body}\n");
            }
        }
        text.Append("--- qemu stderr ---\n").Append(_qemu.Stderr).Append("--- command ---\n").Append(_qemu.CommandLine);
        return text.ToString();
    }

    private async Task ReadAsync()
    {
        var decoder = new ConsoleDecoder();
        var buffer = new byte[8192];
        var frames = new List<ConsoleFrame>();
        while (true)
        {
            int n;
            try
            {
                n = await _qemu.Console.ReadAsync(buffer);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                n = 0;
            }
            frames.Clear();
            if (n == 0)
            {
                frames.AddRange(decoder.Flush());
            }
            else
            {
                decoder.Decode(buffer.AsSpan(0, n), frames);
            }
            lock (_frames)
            {
                foreach (var f in frames)
                {
                    _frames.Add(f);
                    _arrivals.Add(_clock.Elapsed);
                }
            }
            if (frames.Count > 0 || n == 0)
            {
                _arrived.Release();
            }
            if (n == 0)
            {
                return;
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _qemu.DisposeAsync();
        try
        {
            await _reader.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
        }
    }
}
