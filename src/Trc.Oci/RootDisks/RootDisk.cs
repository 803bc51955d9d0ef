using Trc.Oci.Images;

namespace Trc.Oci.RootDisks;

/// <summary>A published, read-only ext4 root disk and the image configuration recorded beside it.</summary>
/// <param name="ManifestDigest">The digest of the image manifest the disk was built from.</param>
/// <param name="ImagePath">The ext4 image (mode 0444), <c>DIR/ALGORITHM/HEX.ext4</c>.</param>
/// <param name="ConfigPath">The configuration for the guest, <c>DIR/ALGORITHM/HEX.json</c>.</param>
/// <param name="SizeBytes">The size of the disk as the VM sees it (the file is sparse: it may occupy less).</param>
/// <param name="Config">The configuration read from <paramref name="ConfigPath"/>.</param>
public sealed record RootDisk(Digest ManifestDigest, string ImagePath, string ConfigPath, long SizeBytes, RootDiskConfig Config);
