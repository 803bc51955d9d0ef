using System.Text.Json;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// What <c>vmm.json</c> in a VM's state directory holds, so a later agent can adopt the VMM: the
/// process (pid and start time, against pid reuse), where its console and API are, its jail, the
/// spec it runs, and whether it got as far as <c>InstanceStart</c>. Written atomically (temporary
/// file, rename) and never holding a secret: the spec has paths and sizes only.
/// </summary>
/// <param name="Driver">Always <c>firecracker</c>: other drivers skip records not theirs.</param>
/// <param name="Pid">The VMM's pid (the jailer execs Firecracker in place, so it is both).</param>
/// <param name="StartTicks">Its start time in clock ticks since boot.</param>
/// <param name="Started">The guest was started; a VMM left before that is killed on recovery.</param>
/// <param name="ApiSocket">The API socket's host path.</param>
/// <param name="ConsoleIn">The VMM's stdin FIFO.</param>
/// <param name="ConsoleOut">The VMM's stdout FIFO.</param>
/// <param name="JailDirectory">The jail to remove once the VMM is gone, or null.</param>
/// <param name="Spec">The spec it was started from.</param>
internal sealed record FirecrackerRecord(
    string Driver,
    int Pid,
    long StartTicks,
    bool Started,
    string ApiSocket,
    string ConsoleIn,
    string ConsoleOut,
    string? JailDirectory,
    VmSpec Spec)
{
    public const string DriverName = "firecracker";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    public static string PathIn(string stateDir) => Path.Combine(stateDir, FirecrackerLaunch.RecordFile);

    public async Task WriteAsync(CancellationToken ct)
    {
        var path = PathIn(Spec.StateDir);
        var tmp = path + ".tmp";
        await File.WriteAllBytesAsync(tmp, JsonSerializer.SerializeToUtf8Bytes(this, Json), ct).ConfigureAwait(false);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The record in <paramref name="stateDir"/>, or null when there is none, it is unreadable, or it is another driver's.</summary>
    public static async Task<FirecrackerRecord?> ReadAsync(string stateDir, CancellationToken ct)
    {
        var path = PathIn(stateDir);
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            var record = JsonSerializer.Deserialize<FirecrackerRecord>(await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false), Json);
            return record is { Driver: DriverName, Spec: not null } ? record : null;
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            return null;
        }
    }
}
