using Microsoft.Win32.SafeHandles;

using Trc.Oci.Native;

namespace Trc.Oci.RootDisks;

/// <summary>
/// An exclusive flock on <c>HEX.lock</c>, held while a disk is built or deleted; the kernel releases
/// it when the holder dies. The file may be unlinked by its holder (so no lock files pile up): whoever
/// then gets the lock on the unlinked inode sees that the path no longer names it and starts over.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class CacheLock : IDisposable
{
    private readonly SafeFileHandle _handle;

    private CacheLock(string path, SafeFileHandle handle)
    {
        Path = path;
        _handle = handle;
    }

    public string Path { get; }

    /// <summary>Takes the lock without waiting; null when another open file holds it.</summary>
    public static CacheLock? TryAcquire(string path)
    {
        while (true)
        {
            var handle = Libc.OpenLockFile(path);
            try
            {
                if (!Libc.TryLockExclusive(handle))
                {
                    handle.Dispose();
                    return null;
                }
                var held = Libc.FStat(handle);
                if (Libc.LStat(path) is { } current && current.Inode == held.Inode
                    && current.DeviceMajor == held.DeviceMajor && current.DeviceMinor == held.DeviceMinor)
                {
                    return new CacheLock(path, handle);
                }
                handle.Dispose(); // the previous holder unlinked it: lock the file the path names now
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }
    }

    /// <summary>Unlinks the lock file, then releases the lock.</summary>
    public void DeleteAndRelease()
    {
        try
        {
            File.Delete(Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A lock file left behind is harmless: the next holder uses it, or a collection deletes it.
        }
        finally
        {
            _handle.Dispose();
        }
    }

    /// <summary>Releases the lock, leaving the file.</summary>
    public void Dispose() => _handle.Dispose();
}
