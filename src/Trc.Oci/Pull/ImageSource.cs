using Trc.Oci.Images;
using Trc.Oci.Layout;
using Trc.Oci.Registry;
using Trc.Oci.Store;

namespace Trc.Oci.Pull;

/// <summary>Where an image comes from: a registry or a local OCI layout.</summary>
public abstract class ImageSource
{
    /// <summary>The source as the user wrote it, for messages.</summary>
    public abstract string Name { get; }

    /// <summary>The digest the reference pins, or null when it names a tag.</summary>
    public abstract Digest? PinnedDigest { get; }

    /// <summary>The manifest or index the reference names.</summary>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <returns>The manifest or index, digest verified.</returns>
    public abstract Task<FetchedManifest> GetRootAsync(CancellationToken cancellationToken);

    /// <summary>A manifest named by an index entry.</summary>
    /// <param name="descriptor">The entry.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <returns>The manifest, digest verified.</returns>
    public abstract Task<FetchedManifest> GetManifestAsync(Descriptor descriptor, CancellationToken cancellationToken);

    /// <summary>Puts a blob into <paramref name="store"/> (if it is not there), checking its digest and size.</summary>
    /// <param name="descriptor">The blob.</param>
    /// <param name="store">The store.</param>
    /// <param name="progress">Told the bytes so far, or null.</param>
    /// <param name="cancellationToken">Stops the work; nothing is stored.</param>
    /// <returns>The stored blob's path.</returns>
    public abstract Task<string> FetchBlobAsync(Descriptor descriptor, BlobStore store, IProgress<long>? progress, CancellationToken cancellationToken);

    /// <summary>
    /// Parses <c>oci:DIR[:tag]</c> as a layout source and anything else as a registry reference
    /// (<c>registry/repo:tag</c>, <c>repo@sha256:...</c>).
    /// </summary>
    /// <param name="text">The reference.</param>
    /// <param name="registry">The client used for registry references.</param>
    /// <returns>The source.</returns>
    /// <exception cref="FormatException">The reference is malformed; the message names the part.</exception>
    public static ImageSource Parse(string text, RegistryClient registry)
    {
        if (OciLayoutReference.HasScheme(text))
        {
            var layout = OciLayoutReference.Parse(text);
            return new LayoutImageSource(layout);
        }
        return new RegistryImageSource(registry, ImageReference.Parse(text));
    }
}

/// <summary>An image in a registry.</summary>
/// <param name="client">The registry client.</param>
/// <param name="reference">The image.</param>
public sealed class RegistryImageSource(RegistryClient client, ImageReference reference) : ImageSource
{
    /// <summary>The image.</summary>
    public ImageReference Reference { get; } = reference;

    /// <inheritdoc />
    public override string Name => Reference.ToString();

    /// <inheritdoc />
    public override Digest? PinnedDigest => Reference.Digest;

    /// <inheritdoc />
    public override Task<FetchedManifest> GetRootAsync(CancellationToken cancellationToken) =>
        client.GetManifestAsync(Reference, null, cancellationToken);

    /// <inheritdoc />
    public override async Task<FetchedManifest> GetManifestAsync(Descriptor descriptor, CancellationToken cancellationToken)
    {
        var manifest = await client.GetManifestAsync(Reference, descriptor.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        if (manifest.Bytes.Length != descriptor.Size)
        {
            throw new RegistryException(RegistryErrorKind.Verification,
                $"{Name}: manifest {descriptor.Digest} is {manifest.Bytes.Length} bytes, but the index says {descriptor.Size}");
        }
        return manifest;
    }

    /// <inheritdoc />
    public override Task<string> FetchBlobAsync(Descriptor descriptor, BlobStore store, IProgress<long>? progress, CancellationToken cancellationToken) =>
        client.DownloadBlobAsync(Reference, descriptor, store, progress, cancellationToken);
}

/// <summary>An image in a local OCI image layout.</summary>
/// <param name="reference">The layout and tag.</param>
public sealed class LayoutImageSource(OciLayoutReference reference) : ImageSource
{
    private OciLayout? _layout;

    /// <summary>The layout and tag.</summary>
    public OciLayoutReference Reference { get; } = reference;

    /// <inheritdoc />
    public override string Name => Reference.ToString();

    /// <inheritdoc />
    public override Digest? PinnedDigest => null;

    private OciLayout Layout
    {
        get
        {
            try
            {
                return _layout ??= OciLayout.Open(Reference.Directory);
            }
            catch (OciFormatException e)
            {
                throw new RegistryException(RegistryErrorKind.NotFound, e.Message, e);
            }
        }
    }

    /// <inheritdoc />
    public override Task<FetchedManifest> GetRootAsync(CancellationToken cancellationToken) =>
        Task.FromResult(Layout.ReadManifest(Layout.Find(Reference.Tag)));

    /// <inheritdoc />
    public override Task<FetchedManifest> GetManifestAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        Task.FromResult(Layout.ReadManifest(descriptor));

    /// <inheritdoc />
    public override async Task<string> FetchBlobAsync(Descriptor descriptor, BlobStore store, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        if (store.Contains(descriptor.Digest, descriptor.Size))
        {
            progress?.Report(descriptor.Size);
            return store.PathOf(descriptor.Digest);
        }
        var what = $"{Name}: blob {descriptor.Digest}";
        FileStream source;
        try
        {
            source = Layout.Blobs.OpenRead(descriptor.Digest);
        }
        catch (FileNotFoundException e)
        {
            throw new RegistryException(RegistryErrorKind.NotFound, $"{what}: not in the layout", e);
        }
        await using (source.ConfigureAwait(false))
        {
            try
            {
                return await store.IngestAsync(source, descriptor.Digest, descriptor.Size, progress, cancellationToken).ConfigureAwait(false);
            }
            catch (BlobVerificationException e)
            {
                throw new RegistryException(RegistryErrorKind.Verification, $"{Name}: {e.Message}", e);
            }
        }
    }
}
