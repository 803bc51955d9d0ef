using Trc.Agent.Guest;
using Trc.Agent.Runtime;

namespace Trc.Agent.Tests;

/// <summary>Reads a VM's console frames in tests, bounded by a patience.</summary>
internal static class ConsoleFrames
{
    /// <summary>Every frame until the console ends.</summary>
    public static async Task<List<ConsoleFrame>> ReadAllAsync(IVm vm, TimeSpan patience) => await ReadAsync(vm, int.MaxValue, patience);

    /// <summary>The next <paramref name="count"/> frames (fewer when the console ends first).</summary>
    public static async Task<List<ConsoleFrame>> ReadAsync(IVm vm, int count, TimeSpan patience)
    {
        using var timeout = new CancellationTokenSource(patience);
        var frames = new List<ConsoleFrame>();
        await foreach (var frame in vm.ReadConsoleAsync(timeout.Token))
        {
            frames.Add(frame);
            if (frames.Count == count)
            {
                break;
            }
        }
        return frames;
    }
}
