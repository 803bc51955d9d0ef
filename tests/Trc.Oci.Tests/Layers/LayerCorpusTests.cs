using System.Runtime.Versioning;
using Trc.Core.Tests;
using Trc.Oci.Layers;

namespace Trc.Oci.Tests.Layers;

/// <summary>Every tar of the outside corpora applies, or fails with a LayerException; never elsewhere, never hangs.</summary>
[SupportedOSPlatform("linux")]
public sealed class LayerCorpusTests
{
    private static readonly string[] Suites = ["golang_tar", "node-tar", "tar-rs", "misc"];

    public static TheoryData<string> Tars()
    {
        var data = new TheoryData<string>();
        if (SharedTestData.Directory is null)
        {
            data.Add("missing"); // skipped by the attribute; xunit wants one row
            return data;
        }
        foreach (var suite in Suites)
        {
            foreach (var file in Directory.EnumerateFiles(SharedTestData.PathOf("tar", suite), "*.tar").Order(StringComparer.Ordinal))
            {
                data.Add(suite + "/" + Path.GetFileName(file));
            }
        }
        return data;
    }

    [SharedTestDataTheory]
    [MemberData(nameof(Tars))]
    public void Corpus_tar_applies_or_is_refused_with_a_layer_exception(string tar)
    {
        using var box = new LayerSandbox();
        var path = SharedTestData.PathOf(["tar", .. tar.Split('/')]);
        var run = Task.Run(() =>
        {
            using var stream = File.OpenRead(path);
            try
            {
                new LayerApplier(box.Root).Apply(stream);
            }
            catch (LayerException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
            }
        });
        Assert.True(run.Wait(TimeSpan.FromSeconds(60)), $"{tar} did not finish in 60 s");
        box.AssertNothingOutsideRootChanged();
    }
}
