using Trc.Agent.Runtime.Firecracker;

namespace Trc.Agent.Tests.Firecracker;

public sealed class FirecrackerOptionsTests
{
    [Fact]
    public void The_environment_overrides_the_defaults_and_leaves_the_rest()
    {
        var environment = new Dictionary<string, string>
        {
            ["TRC_FIRECRACKER"] = "/opt/fc/firecracker-v1.12.0",
            ["TRC_JAILER_UID"] = "990",
            ["TRC_JAILER_GID"] = "991",
            ["TRC_JAILER_CHROOT"] = "/var/lib/trc/jail",
            ["TRC_FIRECRACKER_NETNS"] = "",
        };

        var options = FirecrackerOptions.FromEnvironment(environment.GetValueOrDefault);

        Assert.Equal("/opt/fc/firecracker-v1.12.0", options.FirecrackerBinary);
        Assert.Equal(new FirecrackerOptions().JailerBinary, options.JailerBinary);
        Assert.True(options.UseJailer);
        Assert.Equal(990, options.Uid);
        Assert.Equal(991, options.Gid);
        Assert.Equal("/var/lib/trc/jail", options.ChrootBaseDir);
        Assert.Null(options.NetworkNamespace); // empty is unset
        Assert.False(FirecrackerOptions.FromEnvironment(n => n == "TRC_FIRECRACKER_JAILER" ? "0" : null).UseJailer);
    }

    [Fact]
    public void A_user_that_is_not_a_number_is_refused_by_name()
    {
        var e = Assert.Throws<FormatException>(() => FirecrackerOptions.FromEnvironment(n => n == "TRC_JAILER_UID" ? "trc-vmm" : null));
        Assert.Contains("TRC_JAILER_UID must be a numeric id, not 'trc-vmm'", e.Message, StringComparison.Ordinal);
    }
}
