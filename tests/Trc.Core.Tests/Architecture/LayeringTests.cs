using System.Xml.Linq;

namespace Trc.Core.Tests.Architecture;

/// <summary>The dependency direction of DESIGN section 2, checked on the project files.</summary>
public sealed class LayeringTests
{
    // Each project and the projects it may reference (directly).
    public static TheoryData<string, string[]> Allowed() => new()
    {
        { "Trc.Core", [] },
        { "Trc.EventStore", ["Trc.Core"] },
        { "Trc.ControlPlane", ["Trc.Core", "Trc.EventStore"] },
        { "Trc.Oci", ["Trc.Core"] },
        { "Trc.Agent", ["Trc.Core", "Trc.Oci", "Trc.Client"] },
        { "Trc.Edge", ["Trc.Core"] },
        { "Trc.Client", ["Trc.Core"] },
        { "Trc.Cli", ["Trc.Core", "Trc.EventStore", "Trc.ControlPlane", "Trc.Oci", "Trc.Agent", "Trc.Edge", "Trc.Client"] },
    };

    [Theory]
    [MemberData(nameof(Allowed))]
    public void Projects_reference_only_the_layers_below_them(string project, string[] allowed)
    {
        var references = Project(project).Descendants("ProjectReference")
            .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value))
            .ToList();
        var forbidden = references.Except(allowed).ToList();
        Assert.True(forbidden.Count == 0, $"{project} references {string.Join(", ", forbidden)}, against DESIGN section 2");
    }

    [Fact]
    public void Core_has_no_package_dependency()
    {
        var packages = Project("Trc.Core").Descendants().Where(e => e.Name.LocalName is "PackageReference" or "FrameworkReference").ToList();
        Assert.Empty(packages);
    }

    [Fact]
    public void Every_source_project_is_covered_by_this_test()
    {
        var projects = Directory.GetDirectories(Path.Combine(SharedTestData.RepositoryRoot, "src")).Select(Path.GetFileName).Order().ToList();
        var covered = ((IEnumerable<object[]>)Allowed()).Select(row => (string)row[0]).Order().ToList();
        Assert.Equal(covered, projects!);
    }

    private static XDocument Project(string name) =>
        XDocument.Load(Path.Combine(SharedTestData.RepositoryRoot, "src", name, name + ".csproj"));
}
