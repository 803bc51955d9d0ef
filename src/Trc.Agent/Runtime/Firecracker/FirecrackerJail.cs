using System.Runtime.Versioning;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// The jail's root before the jailer runs: the jailer creates <c>BASE/firecracker/ID/root</c> only
/// when missing and leaves what is in it, so the kernel, initramfs and disks are hard-linked there
/// first (the jailed VMM sees nothing else). The instance's own files (scratch, config disk,
/// volumes) are given to the VMM's user; shared ones (kernel, initramfs, release root disk) stay as
/// they are and must be readable by it.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class FirecrackerJail
{
    /// <summary>Builds the jail's root for <paramref name="plan"/>; a stale jail of the same id is replaced.</summary>
    public static void Prepare(FirecrackerLaunchPlan plan, int uid, int gid)
    {
        var jail = plan.JailDirectory ?? throw new InvalidOperationException("not a jailed launch");
        Remove(jail);
        var root = Path.Combine(jail, "root");
        Directory.CreateDirectory(root);
        foreach (var file in plan.JailFiles)
        {
            var errno = FirecrackerNative.Link(file.Source, file.Target);
            if (errno == FirecrackerNative.EXDev)
            {
                if (file.Writable)
                {
                    throw new VmStartException(
                        $"'{file.Source}' cannot be hard-linked into the jail '{root}': it is on another filesystem, and a copy would lose the guest's writes. Put the chroot base on the filesystem that holds scratch disks and volumes");
                }
                // Read-only: a copy is correct, only slower.
                File.Copy(file.Source, file.Target);
            }
            else if (errno != 0)
            {
                throw new VmStartException($"cannot link '{file.Source}' into the jail as '{file.Target}': {FirecrackerNative.Message(errno)}");
            }
            if (file.InstanceOwned)
            {
                // A hard link shares the inode: this gives the instance's file itself to the
                // VMM's user (the agent, as root, keeps access).
                FirecrackerNative.Chown(file.Target, uid, gid);
            }
        }
    }

    /// <summary>Removes a jail (links, the jailer's device nodes, the copied binary); missing is fine.</summary>
    public static void Remove(string jailDirectory)
    {
        try
        {
            if (Directory.Exists(jailDirectory))
            {
                // Directory.Delete does not follow symlinks; hard links only lose a name.
                Directory.Delete(jailDirectory, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a later start of the same id replaces it.
        }
    }
}
