using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Trc.Agent.Runtime.Firecracker;

/// <summary>
/// Whether KVM works here: <c>/dev/kvm</c> opens read-write, speaks API version 12, creates a VM,
/// and (on x86_64) runs a vCPU in 64-bit mode with paging, the mode Firecracker enters a kernel
/// in, through one port write and a <c>hlt</c>. The probe runs on its own thread and is abandoned
/// at the timeout: where nested virtualization is broken, <c>KVM_RUN</c> may never return.
/// </summary>
[SupportedOSPlatform("linux")]
public static class KvmProbe
{
    private const ulong KvmGetApiVersion = 0xAE00;
    private const ulong KvmCreateVm = 0xAE01;
    private const ulong KvmGetVcpuMmapSize = 0xAE04;
    private const ulong KvmCreateVcpu = 0xAE41;
    private const ulong KvmSetUserMemoryRegion = 0x4020AE46;
    private const ulong KvmRun = 0xAE80;
    private const ulong KvmSetRegs = 0x4090AE82;
    private const ulong KvmGetSregs = 0x8138AE83;
    private const ulong KvmSetSregs = 0x4138AE84;
    private const int KvmExitIo = 2;
    private const int KvmExitHlt = 5;
    private const long GuestMemory = 0x200000;
    private const byte ProbePort = 0x80;

    /// <summary>Null when KVM works; otherwise why not, in words an operator can act on.</summary>
    public static async Task<string?> ProblemAsync(string device, TimeSpan timeout, CancellationToken ct)
    {
        var result = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                result.TrySetResult(Probe(device));
            }
            catch (Exception e)
            {
                result.TrySetResult($"the KVM probe failed: {e.Message}");
            }
        })
        {
            IsBackground = true,
            Name = "kvm-probe",
        };
        thread.Start();
        try
        {
            return await result.Task.WaitAsync(timeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return $"KVM did not run a test vCPU within {timeout.TotalSeconds:0.#} s (nested virtualization that hangs?)";
        }
    }

    private static string? Probe(string device)
    {
        using var kvm = FirecrackerNative.TryOpen(device, FirecrackerNative.ORdWr, 0, out var errno);
        if (kvm is null)
        {
            return errno switch
            {
                FirecrackerNative.ENoent => $"{device} does not exist: no KVM here (enable virtualization in the firmware or hypervisor; load kvm_intel or kvm_amd)",
                FirecrackerNative.EAccess => $"{device} cannot be opened read-write: permission denied (run the agent as root or in the kvm group)",
                _ => $"{device} cannot be opened: {FirecrackerNative.Message(errno)}",
            };
        }
        var version = FirecrackerNative.Ioctl(kvm, KvmGetApiVersion, 0, out errno);
        if (version != 12)
        {
            return version < 0
                ? $"{device} is not a KVM device: {FirecrackerNative.Message(errno)}"
                : $"{device} speaks KVM API version {version}, not 12";
        }
        var vmFd = FirecrackerNative.Ioctl(kvm, KvmCreateVm, 0, out errno);
        if (vmFd < 0)
        {
            return $"KVM cannot create a VM: {FirecrackerNative.Message(errno)}";
        }
        using var vm = new SafeFileHandle((IntPtr)vmFd, ownsHandle: true);
        return RuntimeInformation.ProcessArchitecture == Architecture.X64 ? RunVcpu(kvm, vm) : null;
    }

    private static string? RunVcpu(SafeFileHandle kvm, SafeFileHandle vm)
    {
        var memory = FirecrackerNative.Map(GuestMemory, FirecrackerNative.ProtRead | FirecrackerNative.ProtWrite,
            FirecrackerNative.MapPrivate | FirecrackerNative.MapAnonymous | FirecrackerNative.MapNoReserve, null, out var errno);
        if (memory == IntPtr.Zero)
        {
            return $"cannot map guest memory for the KVM probe: {FirecrackerNative.Message(errno)}";
        }
        var run = IntPtr.Zero;
        long runSize = 0;
        try
        {
            // Identity-mapped 2 MiB page (PML4 0x9000 -> PDPT 0xa000 -> PD 0xb000), code at 0x1000:
            // mov al, 'K'; out 0x80, al; hlt.
            Marshal.WriteInt64(memory, 0x9000, 0xa000 | 3);
            Marshal.WriteInt64(memory, 0xa000, 0xb000 | 3);
            Marshal.WriteInt64(memory, 0xb000, 0x83);
            Marshal.Copy(new byte[] { 0xb0, (byte)'K', 0xe6, ProbePort, 0xf4 }, 0, memory + 0x1000, 5);

            var region = new byte[32];
            BinaryPrimitives.WriteUInt64LittleEndian(region.AsSpan(8), 0); // guest physical address
            BinaryPrimitives.WriteUInt64LittleEndian(region.AsSpan(16), GuestMemory);
            BinaryPrimitives.WriteUInt64LittleEndian(region.AsSpan(24), (ulong)memory);
            if (FirecrackerNative.Ioctl(vm, KvmSetUserMemoryRegion, region, out errno) < 0)
            {
                return $"KVM cannot map guest memory: {FirecrackerNative.Message(errno)}";
            }
            var vcpuFd = FirecrackerNative.Ioctl(vm, KvmCreateVcpu, 0, out errno);
            if (vcpuFd < 0)
            {
                return $"KVM cannot create a vCPU: {FirecrackerNative.Message(errno)}";
            }
            using var vcpu = new SafeFileHandle((IntPtr)vcpuFd, ownsHandle: true);
            runSize = FirecrackerNative.Ioctl(kvm, KvmGetVcpuMmapSize, 0, out errno);
            if (runSize <= 0)
            {
                return $"KVM gives no vCPU run area: {FirecrackerNative.Message(errno)}";
            }
            run = FirecrackerNative.Map(runSize, FirecrackerNative.ProtRead | FirecrackerNative.ProtWrite, FirecrackerNative.MapShared, vcpu, out errno);
            if (run == IntPtr.Zero)
            {
                return $"cannot map the vCPU run area: {FirecrackerNative.Message(errno)}";
            }

            var sregs = new byte[312];
            if (FirecrackerNative.Ioctl(vcpu, KvmGetSregs, sregs, out errno) < 0)
            {
                return $"KVM_GET_SREGS failed: {FirecrackerNative.Message(errno)}";
            }
            // struct kvm_sregs: segments cs, ds, es, fs, gs, ss at 24-byte strides, then control registers.
            WriteSegment(sregs, 0, selector: 8, type: 11, longMode: true);
            for (var offset = 24; offset <= 120; offset += 24)
            {
                WriteSegment(sregs, offset, selector: 16, type: 3, longMode: false);
            }
            BinaryPrimitives.WriteUInt64LittleEndian(sregs.AsSpan(224), 0x80050033); // cr0: PG WP AM NE ET MP PE
            BinaryPrimitives.WriteUInt64LittleEndian(sregs.AsSpan(240), 0x9000);     // cr3
            BinaryPrimitives.WriteUInt64LittleEndian(sregs.AsSpan(248), 0x20);       // cr4: PAE
            BinaryPrimitives.WriteUInt64LittleEndian(sregs.AsSpan(264), 0x500);      // efer: LME LMA
            if (FirecrackerNative.Ioctl(vcpu, KvmSetSregs, sregs, out errno) < 0)
            {
                return $"KVM_SET_SREGS failed: {FirecrackerNative.Message(errno)}";
            }
            var regs = new byte[144];
            BinaryPrimitives.WriteUInt64LittleEndian(regs.AsSpan(48), 0x8000);  // rsp
            BinaryPrimitives.WriteUInt64LittleEndian(regs.AsSpan(128), 0x1000); // rip
            BinaryPrimitives.WriteUInt64LittleEndian(regs.AsSpan(136), 0x2);    // rflags
            if (FirecrackerNative.Ioctl(vcpu, KvmSetRegs, regs, out errno) < 0)
            {
                return $"KVM_SET_REGS failed: {FirecrackerNative.Message(errno)}";
            }

            var sawPort = false;
            for (var exits = 0; exits < 8; exits++)
            {
                if (FirecrackerNative.Ioctl(vcpu, KvmRun, 0, out errno) < 0)
                {
                    if (errno is FirecrackerNative.EIntr or FirecrackerNative.EAgain)
                    {
                        continue;
                    }
                    return $"KVM_RUN failed: {FirecrackerNative.Message(errno)}";
                }
                var reason = Marshal.ReadInt32(run, 8);
                if (reason == KvmExitIo && Marshal.ReadInt16(run, 34) == ProbePort)
                {
                    sawPort = true;
                    continue;
                }
                if (reason == KvmExitHlt && sawPort)
                {
                    return null;
                }
                return $"KVM ran the test vCPU but it stopped with exit reason {reason}";
            }
            return "KVM ran the test vCPU but it never reached its hlt";
        }
        finally
        {
            if (run != IntPtr.Zero)
            {
                FirecrackerNative.Unmap(run, runSize);
            }
            FirecrackerNative.Unmap(memory, GuestMemory);
        }
    }

    // struct kvm_segment: base u64, limit u32, selector u16, type, present, dpl, db, s, l, g, avl, unusable, padding.
    private static void WriteSegment(byte[] sregs, int offset, ushort selector, byte type, bool longMode)
    {
        var s = sregs.AsSpan(offset, 24);
        BinaryPrimitives.WriteUInt64LittleEndian(s, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], 0xffffffff);
        BinaryPrimitives.WriteUInt16LittleEndian(s[12..], selector);
        s[14] = type;
        s[15] = 1;                     // present
        s[16] = 0;                     // dpl
        s[17] = longMode ? (byte)0 : (byte)1; // db
        s[18] = 1;                     // s: code or data
        s[19] = longMode ? (byte)1 : (byte)0; // l
        s[20] = 1;                     // g
        s[21] = 0;                     // avl
        s[22] = 0;                     // unusable
    }
}
