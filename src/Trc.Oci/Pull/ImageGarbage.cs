using Trc.Oci.Images;
using Trc.Oci.Store;

namespace Trc.Oci.Pull;

/// <summary>Garbage collection of a pull cache's blobs.</summary>
public static class ImageGarbage
{
    /// <summary>
    /// Deletes the blobs that none of <paramref name="keepManifests"/> names (as itself, its config
    /// or a layer) and that were not stored or used within <paramref name="minUnused"/>; and
    /// abandoned partial downloads.
    /// </summary>
    /// <param name="store">The cache.</param>
    /// <param name="keepManifests">Image manifests whose blobs stay (the images with a root disk, or running).</param>
    /// <param name="minUnused">How long a blob must have gone unused to be deleted.</param>
    /// <returns>How many blobs were deleted and the bytes freed.</returns>
    public static ImageGarbageResult Collect(BlobStore store, IEnumerable<Digest> keepManifests, TimeSpan minUnused)
    {
        var keep = new HashSet<Digest>();
        foreach (var digest in keepManifests)
        {
            keep.Add(digest);
            if (!store.Contains(digest))
            {
                continue;
            }
            try
            {
                if (ManifestParser.Parse(store.ReadAll(digest, ManifestParser.MaxManifestBytes), null) is ImageManifest manifest)
                {
                    keep.Add(manifest.Config.Digest);
                    foreach (var layer in manifest.Layers)
                    {
                        keep.Add(layer.Digest);
                    }
                }
            }
            catch (Exception e) when (e is OciFormatException or BlobStoreException)
            {
                // A damaged manifest keeps only itself; its blobs age out like any other.
            }
        }
        var cutoff = DateTime.UtcNow - minUnused;
        var deleted = 0;
        long bytes = 0;
        foreach (var blob in store.Enumerate().ToList())
        {
            if (!keep.Contains(blob.Digest) && blob.LastWriteUtc < cutoff)
            {
                bytes += store.Delete(blob.Digest);
                deleted++;
            }
        }
        store.CleanIngest(TimeSpan.FromHours(1));
        return new ImageGarbageResult(deleted, bytes);
    }
}

/// <summary>What <see cref="ImageGarbage.Collect"/> deleted.</summary>
/// <param name="Blobs">Blobs deleted.</param>
/// <param name="Bytes">Bytes freed.</param>
public sealed record ImageGarbageResult(int Blobs, long Bytes);
