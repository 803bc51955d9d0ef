namespace Trc.Core.Tests;

/// <summary>
/// Finds the outside test suites in <c>../shared/testdata</c> (relative to the repository root), or
/// in <c>$TRC_SHARED_TESTDATA</c> when set.
/// </summary>
public static class SharedTestData
{
    private static readonly Lazy<string?> Root = new(Locate);

    /// <summary>The testdata directory, or null when it is not on this machine.</summary>
    public static string? Directory => Root.Value;

    /// <summary>Why tests that need the suites are skipped.</summary>
    public const string MissingMessage = "../shared/testdata is not present (set TRC_SHARED_TESTDATA to its path): outside suites skipped";

    /// <summary>A path inside the testdata directory; throws when it is absent.</summary>
    public static string PathOf(params string[] parts) =>
        Path.Combine([Directory ?? throw new InvalidOperationException(MissingMessage), .. parts]);

    private static readonly Lazy<string> Repository = new(FindRepositoryRoot);

    /// <summary>The repository root (the directory holding trc.slnx), or <c>$TRC_REPOSITORY_ROOT</c>.</summary>
    public static string RepositoryRoot => Repository.Value;

    private static string? Locate()
    {
        var fromEnv = Environment.GetEnvironmentVariable("TRC_SHARED_TESTDATA");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return System.IO.Directory.Exists(fromEnv) ? fromEnv : null;
        }
        var root = TryFindRepositoryRoot();
        if (root is null)
        {
            return null;
        }
        var candidate = Path.GetFullPath(Path.Combine(root, "..", "shared", "testdata"));
        return System.IO.Directory.Exists(candidate) ? candidate : null;
    }

    private static string FindRepositoryRoot() =>
        TryFindRepositoryRoot() ?? throw new InvalidOperationException(
            $"trc.slnx not found above {AppContext.BaseDirectory} or {Environment.CurrentDirectory}; set TRC_REPOSITORY_ROOT");

    private static string? TryFindRepositoryRoot()
    {
        var fromEnv = Environment.GetEnvironmentVariable("TRC_REPOSITORY_ROOT");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return File.Exists(Path.Combine(fromEnv, "trc.slnx")) ? fromEnv : null;
        }
        // Test binaries usually live under the repository; with --artifacts-path they may not,
        // and then the working directory (where dotnet test was started) is the next guess.
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            var dir = new DirectoryInfo(start);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "trc.slnx")))
            {
                dir = dir.Parent;
            }
            if (dir is not null)
            {
                return dir.FullName;
            }
        }
        return null;
    }
}

/// <summary>A theory over the outside suites: skipped, with a visible reason, when they are absent.</summary>
public sealed class SharedTestDataTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when the suites are missing.</summary>
    public SharedTestDataTheoryAttribute()
    {
        if (SharedTestData.Directory is null)
        {
            Skip = SharedTestData.MissingMessage;
        }
    }
}

/// <summary>A fact over the outside suites: skipped, with a visible reason, when they are absent.</summary>
public sealed class SharedTestDataFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when the suites are missing.</summary>
    public SharedTestDataFactAttribute()
    {
        if (SharedTestData.Directory is null)
        {
            Skip = SharedTestData.MissingMessage;
        }
    }
}
