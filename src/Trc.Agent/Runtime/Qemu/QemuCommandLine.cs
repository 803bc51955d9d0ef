using System.Globalization;

namespace Trc.Agent.Runtime.Qemu;

/// <summary>
/// The argv of one microVM: QEMU's <c>microvm</c> machine, virtio-mmio disks in the guest contract's
/// order (root read-only, scratch, config read-only, volumes), virtio-net on the instance's tap,
/// the serial console on a unix socket, QMP on another, started paused (<c>-S</c>) and daemonized so
/// the VMM outlives the agent. Nothing secret is ever on it: secrets travel on the config disk.
/// </summary>
public static class QemuCommandLine
{
    /// <summary>
    /// The guest kernel's command line (docs/guest.md, "Kernel command line"); under TCG with the
    /// host's TSC rate, <c>tsc_early_khz</c> and <c>tsc=reliable</c>: the guest's TSC is then the
    /// host's, and a kernel left to check it against its timer interrupts (which QEMU drops while
    /// the host has it off the CPU) calls it unstable and loses time at every later stall.
    /// </summary>
    public static string KernelArgs(bool kvm, long? tscKhz) =>
        "console=ttyS0 reboot=t panic=-1 quiet" + (!kvm && tscKhz is > 0 ? " tsc_early_khz=" + tscKhz.Value.ToString(CultureInfo.InvariantCulture) + " tsc=reliable" : "");

    /// <summary>The console socket's path in a VM's state directory.</summary>
    public static string ConsoleSocket(string stateDir) => Path.Combine(stateDir, "console.sock");

    /// <summary>The QMP socket's path in a VM's state directory.</summary>
    public static string QmpSocket(string stateDir) => Path.Combine(stateDir, "qmp.sock");

    /// <summary>The pid file's path in a VM's state directory.</summary>
    public static string PidFile(string stateDir) => Path.Combine(stateDir, "qemu.pid");

    /// <summary>The arguments (without the binary) for <paramref name="spec"/>.</summary>
    public static IReadOnlyList<string> Build(VmSpec spec, bool kvm, long? tscKhz, int tcgCacheMiB)
    {
        var mib = (spec.MemoryBytes + (1 << 20) - 1) >> 20;
        var args = new List<string>
        {
            "-name", "trc-" + spec.InstanceId,
            "-M", "microvm,rtc=on",
            "-accel", kvm ? "kvm" : "tcg,tb-size=" + tcgCacheMiB.ToString(CultureInfo.InvariantCulture),
            "-cpu", kvm ? "host" : "max",
            "-smp", Math.Max(1, spec.Vcpus).ToString(CultureInfo.InvariantCulture),
            "-m", mib.ToString(CultureInfo.InvariantCulture) + "M",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-S",
            "-kernel", spec.Kernel,
            "-initrd", spec.Initrd,
            "-append", KernelArgs(kvm, tscKhz),
            "-chardev", $"socket,id=con0,path={Escape(ConsoleSocket(spec.StateDir))},server=on,wait=off",
            "-serial", "chardev:con0",
            "-qmp", $"unix:{Escape(QmpSocket(spec.StateDir))},server=on,wait=off",
        };
        AddDisk(args, "root", spec.RootDisk, readOnly: true);
        AddDisk(args, "scratch", spec.ScratchDisk, readOnly: false);
        AddDisk(args, "config", spec.ConfigDisk, readOnly: true);
        for (var i = 0; i < spec.Volumes.Count; i++)
        {
            AddDisk(args, "vol" + i.ToString(CultureInfo.InvariantCulture), spec.Volumes[i], readOnly: false);
        }
        if (spec.Network is { } net)
        {
            args.Add("-netdev");
            args.Add($"tap,id=net0,ifname={net.TapDevice},script=no,downscript=no");
            args.Add("-device");
            args.Add($"virtio-net-device,netdev=net0,mac={net.MacAddress}");
        }
        args.AddRange(["-daemonize", "-pidfile", PidFile(spec.StateDir), "-D", Path.Combine(spec.StateDir, "qemu.log")]);
        return args;
    }

    private static void AddDisk(List<string> args, string id, string file, bool readOnly)
    {
        args.Add("-drive");
        args.Add($"id={id},file={Escape(file)},format=raw,if=none" + (readOnly ? ",readonly=on" : ",discard=unmap"));
        args.Add("-device");
        args.Add($"virtio-blk-device,drive={id}");
    }

    // QEMU option values are comma-separated: a literal comma is written twice.
    private static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
