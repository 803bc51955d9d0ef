using System.Runtime.InteropServices;

namespace Trc.Cli.Tests.Dev;

/// <summary>A fact that needs root (chown, or trc dev getting past its own root check); skipped otherwise.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    /// <summary>Sets the skip reason when this process is not root.</summary>
    public RootFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root; this test process is not root";
        }
    }
}

/// <summary>What only root may do to a test's files.</summary>
internal static class RootOnly
{
    /// <summary>Gives <paramref name="path"/> (not following a symlink) to <paramref name="uid"/> and its group of the same number; 0 on success.</summary>
    public static int Chown(string path, int uid) => lchown(path, uid, uid);

    [DllImport("libc", SetLastError = true)]
    private static extern int lchown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int owner, int group);
}
