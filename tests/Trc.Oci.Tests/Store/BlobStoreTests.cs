using System.Text;
using Trc.Oci.Images;
using Trc.Oci.Store;

namespace Trc.Oci.Tests.Store;

public sealed class BlobStoreTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("trc-blobs-");

    public void Dispose() => _dir.Delete(recursive: true);

    private BlobStore NewStore() => new(_dir.FullName);

    private static readonly byte[] Content = Encoding.UTF8.GetBytes("hello, layer");

    private string[] Visible() => Directory.GetFiles(Path.Combine(_dir.FullName, "blobs"), "*", SearchOption.AllDirectories);

    private string[] Ingest()
    {
        var ingest = Path.Combine(_dir.FullName, "ingest");
        return Directory.Exists(ingest) ? Directory.GetFiles(ingest) : [];
    }

    [Fact]
    public async Task Verified_bytes_land_under_their_digest_as_an_oci_layout()
    {
        var store = NewStore();
        var digest = Digest.Compute("sha256", Content);
        var path = await store.IngestAsync(new MemoryStream(Content), digest, Content.Length, null, CancellationToken.None);
        Assert.Equal(Path.Combine(_dir.FullName, "blobs", "sha256", digest.Hex), path);
        Assert.Equal(Content, File.ReadAllBytes(path));
        Assert.True(store.Contains(digest, Content.Length));
        Assert.False(store.Contains(digest, Content.Length + 1));
        Assert.Contains("imageLayoutVersion", File.ReadAllText(Path.Combine(_dir.FullName, "oci-layout")));
        Assert.Empty(Ingest());
    }

    [Fact]
    public async Task Sha512_digests_are_verified_with_sha512()
    {
        var store = NewStore();
        var digest = Digest.Compute("sha512", Content);
        await store.IngestAsync(new MemoryStream(Content), digest, -1, null, CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(_dir.FullName, "blobs", "sha512", digest.Hex)));
    }

    [Fact]
    public async Task Corrupted_bytes_are_refused_and_nothing_is_left()
    {
        var store = NewStore();
        var digest = Digest.Compute("sha256", Content);
        var corrupted = (byte[])Content.Clone();
        corrupted[3] ^= 1;
        var e = await Assert.ThrowsAsync<BlobVerificationException>(() => store.IngestAsync(new MemoryStream(corrupted), digest, Content.Length, null, CancellationToken.None));
        Assert.Contains("hash to sha256:", e.Message);
        Assert.Empty(Visible());
        Assert.Empty(Ingest());
    }

    [Fact]
    public async Task A_short_blob_is_refused_at_the_end_and_a_long_one_at_the_first_extra_byte()
    {
        var store = NewStore();
        var digest = Digest.Compute("sha256", Content);
        var shortError = await Assert.ThrowsAsync<BlobVerificationException>(() => store.IngestAsync(new MemoryStream(Content[..^1]), digest, Content.Length, null, CancellationToken.None));
        Assert.Contains($"ended after {Content.Length - 1} bytes", shortError.Message);

        var longer = new MemoryStream([.. Content, .. new byte[1 << 20]]);
        var longError = await Assert.ThrowsAsync<BlobVerificationException>(() => store.IngestAsync(longer, digest, Content.Length, null, CancellationToken.None));
        Assert.Contains("longer than the", longError.Message);
        Assert.True(longer.Position < longer.Length, "the copy stops early instead of reading the whole oversized body");
        Assert.Empty(Visible());
        Assert.Empty(Ingest());
    }

    [Fact]
    public async Task Cancelling_a_write_stores_nothing()
    {
        var store = NewStore();
        var digest = Digest.Compute("sha256", Content);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.IngestAsync(new MemoryStream(Content), digest, Content.Length, null, cts.Token));
        Assert.Empty(Visible());
        Assert.Empty(Ingest());
    }

    [Fact]
    public async Task Concurrent_writers_of_one_blob_both_succeed_with_one_copy()
    {
        var store = NewStore();
        var data = new byte[4 << 20];
        new Random(7).NextBytes(data);
        var digest = Digest.Compute("sha256", data);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => store.IngestAsync(new MemoryStream(data), digest, data.Length, null, CancellationToken.None))));
        Assert.Single(Visible());
        Assert.Equal(data, File.ReadAllBytes(store.PathOf(digest)));
        Assert.Empty(Ingest());
    }

    [Fact]
    public void Put_enumerate_delete_and_read_caps()
    {
        var store = NewStore();
        var digest = store.Put(Content);
        Assert.Equal(Digest.Compute("sha256", Content), digest);
        Assert.Equal(Content, store.ReadAll(digest, 100));
        Assert.Contains("more than the 5 allowed", Assert.Throws<BlobStoreException>(() => store.ReadAll(digest, 5)).Message);
        Assert.Equal([digest], store.Enumerate().Select(b => b.Digest));
        Assert.Equal(Content.Length, store.Delete(digest));
        Assert.Contains("is not in the store", Assert.Throws<BlobStoreException>(() => store.ReadAll(digest, 100)).Message);
    }

    [Fact]
    public void Abandoned_ingest_files_are_cleaned()
    {
        var store = NewStore();
        var writer = store.BeginWrite(Digest.Compute("sha256", Content), Content.Length);
        writer.Write(Content.AsSpan(0, 3));
        // A writer that died: its file stays until cleaned.
        var leftover = Assert.Single(Ingest());
        File.SetLastWriteTimeUtc(leftover, DateTime.UtcNow.AddHours(-2));
        Assert.Equal(0, store.CleanIngest(TimeSpan.FromHours(3)));
        Assert.Equal(1, store.CleanIngest(TimeSpan.FromHours(1)));
        writer.Dispose();
    }
}
