using System.Globalization;
using System.Text;

namespace Trc.Agent.Guest;

/// <summary>What a console line is (docs/guest.md, "Console protocol").</summary>
public enum ConsoleFrameKind
{
    /// <summary>A line without the frame marker: the guest kernel's own message.</summary>
    Kernel,

    /// <summary><c>RS I</c>: init's progress and warnings.</summary>
    Info,

    /// <summary><c>RS O</c>: a line of the app's stdout.</summary>
    Stdout,

    /// <summary><c>RS E</c>: a line of the app's stderr.</summary>
    Stderr,

    /// <summary><c>RS R pid</c>: the config was read and the app started.</summary>
    Ready,

    /// <summary><c>RS X code oom</c>: the app exited.</summary>
    Exit,

    /// <summary><c>RS F reason</c>: init failed before the app ran.</summary>
    Fatal,
}

/// <summary>One decoded console line.</summary>
/// <param name="Kind">What it is.</param>
/// <param name="Text">The line's text (UTF-8, invalid bytes replaced), without the marker and type letter.</param>
/// <param name="Pid">For <see cref="ConsoleFrameKind.Ready"/>: the app's pid in the guest.</param>
/// <param name="ExitCode">For <see cref="ConsoleFrameKind.Exit"/>: the exit status, or 128 + signal.</param>
/// <param name="Oom">For <see cref="ConsoleFrameKind.Exit"/>: the guest's OOM killer fired.</param>
/// <param name="Truncated">
/// The line was longer than <see cref="ConsoleDecoder.MaxLineBytes"/>: <paramref name="Text"/> holds its start, the rest was dropped.
/// </param>
public sealed record ConsoleFrame(ConsoleFrameKind Kind, string Text, int? Pid = null, int? ExitCode = null, bool Oom = false, bool Truncated = false);

/// <summary>A control frame from the agent to init.</summary>
public abstract record GuestCommand
{
    /// <summary>The frame marker (ASCII RS) that starts every framed console line.</summary>
    public const byte FrameMarker = 0x1e;

    /// <summary>The longest grace period init accepts: 2^31 - 1 milliseconds (about 24.8 days).</summary>
    public static readonly TimeSpan MaxGrace = TimeSpan.FromMilliseconds(int.MaxValue);

    private GuestCommand()
    {
    }

    /// <summary>The frame's bytes on the console: <c>RS letter SP number LF</c>, written in one piece.</summary>
    public abstract byte[] Encode();

    private static byte[] Frame(char letter, long value) =>
        Encoding.ASCII.GetBytes($"\u001e{letter} {value.ToString(CultureInfo.InvariantCulture)}\n");

    /// <summary>Stop: SIGTERM to the app now, SIGKILL to everything after <paramref name="Grace"/>.</summary>
    /// <param name="Grace">The grace period, from zero to <see cref="MaxGrace"/>; sent in whole milliseconds, rounded up.</param>
    public sealed record Stop(TimeSpan Grace) : GuestCommand
    {
        /// <summary>The grace period.</summary>
        public TimeSpan Grace { get; } = Grace >= TimeSpan.Zero && Grace <= MaxGrace
            ? Grace
            : throw new ArgumentOutOfRangeException(nameof(Grace), Grace, $"The grace period must be from 0 to {MaxGrace}.");

        /// <inheritdoc/>
        public override byte[] Encode() => Frame('T', (long)Math.Ceiling(Grace.TotalMilliseconds));
    }

    /// <summary>Forward a signal to the app's process group.</summary>
    /// <param name="Number">The signal number, 1 to 64.</param>
    public sealed record Signal(int Number) : GuestCommand
    {
        /// <summary>The highest signal number Linux has (SIGRTMAX).</summary>
        public const int MaxNumber = 64;

        /// <summary>The signal number.</summary>
        public int Number { get; } = Number is >= 1 and <= MaxNumber
            ? Number
            : throw new ArgumentOutOfRangeException(nameof(Number), Number, $"A signal number is from 1 to {MaxNumber}.");

        /// <inheritdoc/>
        public override byte[] Encode() => Frame('S', Number);
    }
}
