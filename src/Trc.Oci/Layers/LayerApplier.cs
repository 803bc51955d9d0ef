using System.Formats.Tar;

namespace Trc.Oci.Layers;

/// <summary>
/// Applies OCI image layers (tar, optionally gzip-compressed) in order onto a root directory,
/// following the image-spec layer rules: whiteouts and opaque whiteouts hide lower-layer content,
/// regular files, directories, symlinks and hard links are created, device nodes and FIFOs are
/// skipped and reported.
/// </summary>
/// <remarks>
/// Confinement is the point of this class: every name, symlink walk and hard-link target is resolved
/// by <see cref="ConfinedRoot"/> as if the root were a chroot, and a file is never opened, chmod-ed or
/// replaced through a symlink. A hostile entry (escaping '..', whiteout of '..', symlink named '.',
/// symlink loop, hard link to a directory or a missing target) stops the layer with a
/// <see cref="LayerException"/> rather than being skipped: an image that contains one is not one to
/// run, and what was written so far is all inside the root. Absolute names are root-relative
/// ('/etc/x' is written to root/etc/x), as in every container runtime.
/// The applier assumes it is the only writer of the root while it runs.
/// Not applied: xattrs, directory mtimes, symlink mtimes.
/// </remarks>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LayerApplier
{
    private const string OpaqueMarker = ".wh..wh..opq";
    private const string WhiteoutPrefix = ".wh.";

    private readonly ConfinedRoot _root;
    private readonly LayerApplierOptions _options;
    private readonly bool _privileged = Environment.IsPrivilegedProcess;

    /// <summary>Creates an applier for <paramref name="rootDirectory"/> (created if missing).</summary>
    public LayerApplier(string rootDirectory, LayerApplierOptions? options = null)
    {
        _root = new ConfinedRoot(rootDirectory);
        _options = options ?? new LayerApplierOptions();
    }

    /// <summary>The absolute root directory.</summary>
    public string RootDirectory => _root.Root;

    /// <summary>Skipped entries, owners and counts of every layer applied so far.</summary>
    public LayerApplyResult Result { get; } = new();

    /// <summary>Applies the layers in order (lowest first).</summary>
    /// <exception cref="LayerException">A layer is malformed, hostile or over a cap.</exception>
    public LayerApplyResult ApplyAll(IEnumerable<Stream> layers, CancellationToken cancellationToken = default)
    {
        foreach (var layer in layers)
        {
            Apply(layer, cancellationToken);
        }
        return Result;
    }

    /// <summary>
    /// Applies one layer. Synchronous on purpose: it is file-system bound and callers run it on a
    /// worker thread; cancellation is checked between entries and while copying data.
    /// </summary>
    /// <exception cref="LayerException">The layer is malformed, hostile or over a cap.</exception>
    public LayerApplyResult Apply(Stream layer, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(_root.Root);
        // Paths (real, root-relative) this layer wrote, and their ancestors: whiteouts only hide lower layers.
        var written = new HashSet<string>(StringComparer.Ordinal);
        Stream tar;
        try
        {
            tar = LayerStreams.OpenTar(layer);
        }
        catch (Exception e) when (e is not LayerException and not OperationCanceledException)
        {
            throw new LayerException($"cannot read the layer: {e.Message}", inner: e);
        }
        using var decompressed = tar;
        using var counted = new PrefixedStream(ReadOnlyMemory<byte>.Empty, decompressed);
        using var reader = new TarReader(counted, leaveOpen: true);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TarEntry? entry;
            try
            {
                entry = reader.GetNextEntry();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new LayerException($"malformed tar: {e.Message}", offset: counted.Consumed, inner: e);
            }
            if (entry is null)
            {
                return Result;
            }
            if (++Result.Entries > _options.MaxEntries)
            {
                throw new LayerException($"more than {_options.MaxEntries} entries", entry.Name, counted.Consumed);
            }
            try
            {
                ApplyEntry(entry, written, cancellationToken);
            }
            catch (Exception e) when (e is not LayerException and not OperationCanceledException)
            {
                // File-system errors (and truncated data surfacing while copying) still name the entry.
                throw new LayerException(e.Message, entry.Name, counted.Consumed, e);
            }
        }
    }

    private void ApplyEntry(TarEntry entry, HashSet<string> written, CancellationToken cancellationToken)
    {
        var name = entry.Name;
        switch (entry.EntryType)
        {
            case TarEntryType.GlobalExtendedAttributes:
                return; // metadata for the reader, not a file
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                Skip(entry, "device nodes and FIFOs are not created; the guest's /dev is a devtmpfs");
                return;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile
                or TarEntryType.Directory or TarEntryType.SymbolicLink or TarEntryType.HardLink:
                break;
            default:
                Skip(entry, $"unsupported entry type {entry.EntryType}");
                return;
        }

        var parts = ConfinedRoot.Normalize(name, name, "name");
        if (parts.Length == 0)
        {
            // './' or '/' as a directory names the root itself: nothing to create.
            if (entry.EntryType == TarEntryType.Directory)
            {
                return;
            }
            throw new LayerException($"a {entry.EntryType} entry may not name the root directory itself", name);
        }
        var leaf = parts[^1];
        if (leaf.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            Whiteout(entry, parts, written);
            return;
        }

        var parent = _root.ResolveDirectory(parts[..^1], create: true, name)!;
        var path = parent + "/" + leaf;
        // Resolve a hard link's target before anything is removed: it may be the entry's own path.
        var linkTarget = entry.EntryType == TarEntryType.HardLink ? ResolveHardLinkTarget(entry) : null;
        if (linkTarget == path)
        {
            Remember(path, written);
            return;
        }

        var existing = ConfinedRoot.Lstat(path);
        // A directory over a directory merges; anything else replaces what is there. The final
        // component is never followed: a symlink in the way is removed, not written through.
        if (existing != ConfinedRoot.Kind.Missing && !(existing == ConfinedRoot.Kind.Directory && entry.EntryType == TarEntryType.Directory))
        {
            ConfinedRoot.DeleteNoFollow(path);
        }

        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                Directory.CreateDirectory(path);
                Chown(entry, path);
                // Lstat'ed above or created just now: a real directory, so chmod does not go through a link.
                var mode = FilterMode(entry.Mode);
                if (!_privileged)
                {
                    mode |= UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute; // so later entries can be written into it
                }
                File.SetUnixFileMode(path, mode);
                break;
            case TarEntryType.SymbolicLink:
                if (entry.LinkName.Length == 0 || entry.LinkName.Contains('\0'))
                {
                    throw new LayerException("symlink target is empty or contains a NUL byte", name);
                }
                File.CreateSymbolicLink(path, entry.LinkName); // target stored as text, never followed here
                Chown(entry, path);
                break;
            case TarEntryType.HardLink:
                ConfinedRoot.HardLink(linkTarget!, path);
                break;
            default:
                WriteFile(entry, path, cancellationToken);
                break;
        }
        Remember(path, written);
        Result.Owners.Add(new EntryOwner(_root.Relative(path), entry.Uid, entry.Gid));
    }

    private string ResolveHardLinkTarget(TarEntry entry)
    {
        var parts = ConfinedRoot.Normalize(entry.LinkName, entry.Name, "hard link target");
        if (parts.Length == 0)
        {
            throw new LayerException("hard link to the root directory", entry.Name);
        }
        var dir = _root.ResolveDirectory(parts[..^1], create: false, entry.Name)
            ?? throw new LayerException($"hard link target '{entry.LinkName}' does not exist", entry.Name);
        var target = dir + "/" + parts[^1];
        return ConfinedRoot.Lstat(target) switch
        {
            ConfinedRoot.Kind.Missing => throw new LayerException($"hard link target '{entry.LinkName}' does not exist", entry.Name),
            ConfinedRoot.Kind.Directory => throw new LayerException($"hard link target '{entry.LinkName}' is a directory", entry.Name),
            // A symlink target is linked itself (link(2) does not follow it), which is harmless.
            _ => target,
        };
    }

    private void WriteFile(TarEntry entry, string path, CancellationToken cancellationToken)
    {
        if (entry.Length < 0 || Result.BytesWritten + entry.Length > _options.MaxTotalBytes)
        {
            throw new LayerException($"writing {entry.Length} bytes would exceed the cap of {_options.MaxTotalBytes} bytes", entry.Name);
        }
        // CreateNew is O_CREAT|O_EXCL: it fails rather than open a symlink that appeared in the way.
        using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        long copied = 0;
        if (entry.DataStream is { } data)
        {
            var buffer = new byte[81920];
            int n;
            while (copied < entry.Length && (n = data.Read(buffer, 0, (int)Math.Min(buffer.Length, entry.Length - copied))) > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                file.Write(buffer, 0, n);
                copied += n;
            }
        }
        if (copied != entry.Length)
        {
            throw new LayerException($"truncated: {copied} of {entry.Length} bytes present", entry.Name);
        }
        Result.BytesWritten += copied;
        file.Flush();
        Chown(entry, path); // before chmod: chown clears setuid/setgid
        File.SetUnixFileMode(file.SafeFileHandle, FilterMode(entry.Mode)); // fchmod on our own handle
        File.SetLastWriteTimeUtc(file.SafeFileHandle, entry.ModificationTime.UtcDateTime);
    }

    private void Whiteout(TarEntry entry, string[] parts, HashSet<string> written)
    {
        var leaf = parts[^1];
        var dir = _root.ResolveDirectory(parts[..^1], create: false, entry.Name);
        if (leaf == OpaqueMarker)
        {
            if (dir is not null)
            {
                HideLower(dir, written);
            }
            return;
        }
        if (leaf.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal))
        {
            Skip(entry, "AUFS metadata (.wh..wh.*) other than the opaque marker is ignored");
            return;
        }
        var hidden = leaf[WhiteoutPrefix.Length..];
        if (hidden is "" or "." or "..")
        {
            throw new LayerException($"whiteout of '{hidden}' is not allowed", entry.Name);
        }
        var path = dir + "/" + hidden;
        if (dir is not null && !written.Contains(_root.Relative(path)))
        {
            ConfinedRoot.DeleteNoFollow(path);
        }
    }

    /// <summary>Opaque directory: removes what lower layers put in it, keeps what this layer wrote.</summary>
    private void HideLower(string dir, HashSet<string> written)
    {
        foreach (var child in Directory.EnumerateFileSystemEntries(dir))
        {
            if (!written.Contains(_root.Relative(child)))
            {
                ConfinedRoot.DeleteNoFollow(child);
            }
            else if (ConfinedRoot.Lstat(child) == ConfinedRoot.Kind.Directory)
            {
                HideLower(child, written);
            }
        }
    }

    private void Remember(string path, HashSet<string> written)
    {
        for (var rel = _root.Relative(path); rel.Length > 0 && written.Add(rel);)
        {
            var slash = rel.LastIndexOf('/');
            rel = slash < 0 ? "" : rel[..slash];
        }
    }

    private void Chown(TarEntry entry, string path)
    {
        if (_options.ApplyOwnership && _privileged)
        {
            ConfinedRoot.LChown(path, entry.Uid, entry.Gid);
        }
    }

    private UnixFileMode FilterMode(UnixFileMode mode)
    {
        const UnixFileMode permissions = (UnixFileMode)0x1ff | UnixFileMode.StickyBit;
        var allowed = _options.KeepSetuidSetgid ? permissions | UnixFileMode.SetUser | UnixFileMode.SetGroup : permissions;
        return mode & allowed;
    }

    private void Skip(TarEntry entry, string reason) =>
        Result.Skipped.Add(new SkippedEntry(entry.Name, entry.EntryType, reason));
}
