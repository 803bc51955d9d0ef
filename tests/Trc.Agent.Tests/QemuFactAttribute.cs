using Trc.Testing.Guest;

namespace Trc.Agent.Tests;

/// <summary>A fact that needs QEMU and the guest kernel: skipped, with the reason, only where they are absent.</summary>
public sealed class QemuFactAttribute : FactAttribute
{
    public QemuFactAttribute()
    {
        if (GuestAssets.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}
