using System.Runtime.Versioning;
using Trc.Core.Api;
using Trc.Oci.Images;
using Trc.Oci.Pull;
using Trc.Oci.Registry;
using Trc.Oci.RootDisks;
using Trc.Oci.Store;
using Trc.Oci.Layers;

namespace Trc.Agent.Host;

/// <summary>
/// Release images on this node: the OCI blob cache and the read-only root disks built from it
/// (laid out as <c>trc image</c> does: <c>DIR/oci</c> and <c>DIR/rootfs</c>). A root disk already
/// built for the release's manifest is used without touching the registry.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class InstanceImages : IDisposable
{
    private readonly RegistryClient _registry;
    private readonly BlobStore _store;
    private readonly RootDiskCache _disks;

    /// <summary>Images cached under <paramref name="directory"/>, pulled with <paramref name="registry"/>.</summary>
    public InstanceImages(string directory, RegistryClient registry)
    {
        _registry = registry;
        _store = new BlobStore(Path.Combine(directory, "oci"));
        _disks = new RootDiskCache(Path.Combine(directory, "rootfs"));
    }

    /// <summary>The root disk of an instance's release image: cached, or pulled and built now.</summary>
    public async Task<RootDisk> GetRootDiskAsync(InstanceSpecView instance, Action<string>? progress, CancellationToken ct)
    {
        // The manifest for this host: the release pinned it per platform when the image is an index.
        var host = ImagePlatform.Host.ToString();
        var manifest = instance.ResolvedDigests is { } perPlatform
            ? perPlatform.TryGetValue(host, out var d) ? d : null
            : instance.ImageDigest;
        if (manifest is not null && Digest.TryParse(manifest, out var digest, out _) && _disks.TryGet(digest) is { } cached)
        {
            return cached;
        }
        progress?.Invoke($"pulling {instance.Image}");
        var source = ImageSource.Parse(instance.Image, _registry);
        var puller = new ImagePuller(_store, _registry.Options.ParallelDownloads);
        var pulled = await puller.PullAsync(source, null, null, ct).ConfigureAwait(false);
        progress?.Invoke($"building the root disk of {pulled.Resolved.ManifestDigest}");
        var options = new LayerApplierOptions { ApplyOwnership = true };
        return await _disks.GetOrBuildAsync(pulled.Resolved.ManifestDigest, pulled.Config,
            (directory, token) => Task.Run(() => puller.Unpack(pulled, directory, options, token), token), null, ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose() => _registry.Dispose();
}
