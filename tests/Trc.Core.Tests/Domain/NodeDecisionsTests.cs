using Trc.Core.Api;
using Trc.Core.Domain;

namespace Trc.Core.Tests.Domain;

public sealed class NodeDecisionsTests
{
    private static NodeRegistration Registration(string name = "node-1", long memory = 8L << 30) => new(name, memory, 4, "qemu", "kvm", null, "1.0");

    private static void Apply(AggregateState state, IEnumerable<Change> changes)
    {
        foreach (var change in changes.Where(c => c.AggregateId == state.Id))
        {
            foreach (var e in change.Events)
            {
                state.Apply(e.Type, e.Json);
            }
        }
    }

    [Fact]
    public void The_first_registration_takes_the_overlays_next_64_and_a_repeat_changes_nothing()
    {
        var network = OverlayNetwork.Default;
        var overlay = new OverlayState(OverlayState.TheId);
        var a = new NodeState(NodeState.IdOf("a"));
        var changes = NodeDecisions.Register(a, overlay, Registration("a"), network);
        Assert.Equal([(EventNames.NodeAggregate, 0), (EventNames.OverlayAggregate, 0)], changes.Select(c => (c.AggregateType, c.ExpectedVersion)));
        Assert.Equal("fd74:7263:0:1::/64", Assert.IsType<NodeRegistered>(changes[0].Events[0].Payload).Prefix);
        Apply(a, changes);
        Apply(overlay, changes);

        var b = new NodeState(NodeState.IdOf("b"));
        var second = NodeDecisions.Register(b, overlay, Registration("b"), network);
        Assert.Equal(new OverlayPrefixAllocated(b.Id, "b", 2, "fd74:7263:0:2::/64"), second[1].Events[0].Payload);
        // The overlay aggregate is appended at its version: a concurrent registration that read the same version loses.
        Assert.Equal(1, second[1].ExpectedVersion);

        Assert.Empty(NodeDecisions.Register(a, overlay, Registration("a"), network));
        var update = Assert.Single(NodeDecisions.Register(a, overlay, Registration("a", memory: 16L << 30), network));
        Assert.Equal(new NodeUpdated("a", "fd74:7263:0:1::/64", 16L << 30, 4, "qemu", "kvm", null, "1.0"), update.Events[0].Payload);
    }

    [Theory]
    [InlineData("fd74:7263::/48", 1, "fd74:7263:0:1::/64")]
    [InlineData("fd74:7263::/48", 65535, "fd74:7263:0:ffff::/64")]
    [InlineData("fc00:1:2::/48", 256, "fc00:1:2:100::/64")]
    public void Node_k_gets_the_kth_64_of_the_48(string prefix, int index, string expected) =>
        Assert.Equal(expected, OverlayNetwork.Parse(prefix).NodePrefix(index));

    [Theory]
    [InlineData("fd74:7263::/64", "/64")]
    [InlineData("2001:db8::/48", "unique local")]
    [InlineData("10.0.0.0/8", "IPv6")]
    [InlineData("fd74:7263::", "IPv6")]
    [InlineData("fd74:7263:0:1::/48", "bits set")]
    [InlineData("fd74:7263::%eth0/48", "IPv6")]
    [InlineData("fd74:7263::%1/48", "IPv6")]
    public void Only_a_unique_local_48_is_an_overlay(string prefix, string message)
    {
        Assert.Null(OverlayNetwork.TryParse(prefix, out var error));
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_full_overlay_refuses_new_nodes()
    {
        var overlay = new OverlayState(OverlayState.TheId);
        overlay.Apply(EventNames.OverlayPrefixAllocated, EventJson.Serialize(new OverlayPrefixAllocated(Guid.NewGuid(), "x", OverlayNetwork.MaxNodes, "fd74:7263:0:ffff::/64")));
        var e = Assert.Throws<DomainException>(() => NodeDecisions.Register(new NodeState(Guid.NewGuid()), overlay, Registration(), OverlayNetwork.Default));
        Assert.Equal("overlay_full", e.Code);
    }

    [Fact]
    public void State_reports_are_recorded_when_they_change_and_keep_the_address_while_running()
    {
        var instance = new InstanceState(Guid.NewGuid());
        var node = Guid.NewGuid();
        var running = NodeDecisions.ReportState(instance, node, null, InstanceStates.Running, "fd74:7263:0:1::0a", null, null, 0);
        var change = Assert.Single(running);
        Assert.Equal(node.ToString("D"), change.Events[0].RoutingKey);
        Assert.Equal(new InstanceStateChanged(node, "running", "fd74:7263:0:1::a", null, null, 0), change.Events[0].Payload);
        Apply(instance, running);

        Assert.Empty(NodeDecisions.ReportState(instance, node, null, InstanceStates.Running, null, null, null, 0));
        var healthy = Assert.Single(NodeDecisions.ReportState(instance, node, null, InstanceStates.Healthy, null, null, null, 0));
        Assert.Equal("fd74:7263:0:1::a", ((InstanceStateChanged)healthy.Events[0].Payload).Address);
        var exited = Assert.Single(NodeDecisions.ReportState(instance, node, null, InstanceStates.Exited, null, 137, null, 1));
        Assert.Null(((InstanceStateChanged)exited.Events[0].Payload).Address);
    }

    [Theory]
    [InlineData("scheduled", null, null, 0, "invalid_state")]
    [InlineData("RUNNING", null, null, 0, "invalid_state")]
    [InlineData("running", "192.0.2.1", null, 0, "invalid_address")]
    [InlineData("running", "fd00::/64", null, 0, "invalid_address")]
    [InlineData("failed", null, "a\u0000b", 0, "invalid_reason")]
    [InlineData("running", null, null, -1, "invalid_restarts")]
    public void Bad_state_reports_are_refused_naming_the_field(string state, string? address, string? reason, int restarts, string code)
    {
        var e = Assert.Throws<DomainException>(() => NodeDecisions.ReportState(new InstanceState(Guid.NewGuid()), Guid.NewGuid(), null, state, address, null, reason, restarts));
        Assert.Equal(code, e.Code);
    }

    [Fact]
    public void A_reason_that_is_not_text_is_refused()
    {
        var e = Assert.Throws<DomainException>(() => NodeDecisions.ReportState(new InstanceState(Guid.NewGuid()), Guid.NewGuid(), null, "failed", null, null, "bad \ud800 half", 0));
        Assert.Equal(("invalid_reason", "reason"), (e.Code, e.Field));
    }

    [Fact]
    public void A_platform_token_is_admin_or_node_and_the_node_role_passes_no_org_check()
    {
        Assert.Single(Decisions.CreateToken(new TokenState(Guid.NewGuid()), null, "node", Roles.Node, "h"));
        Assert.Throws<DomainException>(() => Decisions.CreateToken(new TokenState(Guid.NewGuid()), Guid.NewGuid(), "n", Roles.Node, "h"));
        Assert.All(Roles.OrgRoles, r => Assert.False(Roles.AtLeast(Roles.Node, r)));
        Assert.False(Roles.AtLeast(Roles.Admin, Roles.Node));
    }
}
