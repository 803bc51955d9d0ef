using System.Globalization;
using System.Runtime.Versioning;

namespace Trc.Agent.Runtime;

/// <summary>Which cgroup hierarchy holds the memory controller on this host.</summary>
public enum CgroupVersion
{
    /// <summary>No usable cgroup hierarchy: VMMs run without host limits (said once in the agent's log).</summary>
    None,

    /// <summary>cgroup v1: separate <c>memory</c> and <c>cpu</c> hierarchies.</summary>
    V1,

    /// <summary>cgroup v2: one unified hierarchy.</summary>
    V2,
}

/// <summary>
/// The agent's cgroups: one parent (<c>trc</c> by default) and one child per VMM with a memory limit
/// (guest RAM plus a fixed VMM overhead) and a CPU weight (a share, never a quota). Uses cgroup v2
/// when the unified hierarchy has the memory controller, else v1's <c>memory</c> and <c>cpu</c>
/// hierarchies (hybrid hosts).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class Cgroups
{
    private readonly string _root;
    private readonly string _parent;

    /// <summary>Detects the hierarchy under <paramref name="root"/> (normally <c>/sys/fs/cgroup</c>).</summary>
    public Cgroups(string parent = "trc", string root = "/sys/fs/cgroup")
    {
        _root = root;
        _parent = parent;
        Version = Detect(root);
    }

    /// <summary>The hierarchy in use.</summary>
    public CgroupVersion Version { get; }

    private static CgroupVersion Detect(string root)
    {
        var controllers = Path.Combine(root, "cgroup.controllers");
        if (File.Exists(controllers) && File.ReadAllText(controllers).Split(' ', '\n').Contains("memory"))
        {
            return CgroupVersion.V2;
        }
        if (File.Exists(Path.Combine(root, "memory", "cgroup.procs")))
        {
            return CgroupVersion.V1;
        }
        return CgroupVersion.None;
    }

    /// <summary>The directories making up one VMM's cgroup (one for v2; memory and cpu for v1).</summary>
    public IReadOnlyList<string> PathsOf(string name) => Version switch
    {
        CgroupVersion.V2 => [Path.Combine(_root, _parent, name)],
        CgroupVersion.V1 => [Path.Combine(_root, "memory", _parent, name), Path.Combine(_root, "cpu", _parent, name)],
        _ => [],
    };

    /// <summary>Creates (or updates) a VMM's cgroup and its limits.</summary>
    public void Create(VmCgroup cgroup)
    {
        ValidateName(cgroup.Name);
        var weight = Math.Clamp(cgroup.CpuWeight, 1, 10000);
        switch (Version)
        {
            case CgroupVersion.V2:
            {
                var parent = Path.Combine(_root, _parent);
                Directory.CreateDirectory(parent);
                EnableControllers(_root, "+memory +cpu");
                EnableControllers(parent, "+memory +cpu");
                var dir = Path.Combine(parent, cgroup.Name);
                Directory.CreateDirectory(dir);
                Write(dir, "memory.max", cgroup.MemoryLimitBytes.ToString(CultureInfo.InvariantCulture));
                Write(dir, "memory.swap.max", "0", optional: true);
                Write(dir, "cpu.weight", weight.ToString(CultureInfo.InvariantCulture));
                break;
            }
            case CgroupVersion.V1:
            {
                var memory = Path.Combine(_root, "memory", _parent, cgroup.Name);
                Directory.CreateDirectory(memory);
                Write(memory, "memory.limit_in_bytes", cgroup.MemoryLimitBytes.ToString(CultureInfo.InvariantCulture));
                Write(memory, "memory.memsw.limit_in_bytes", cgroup.MemoryLimitBytes.ToString(CultureInfo.InvariantCulture), optional: true);
                var cpu = Path.Combine(_root, "cpu", _parent, cgroup.Name);
                Directory.CreateDirectory(cpu);
                // v2 weight 100 is v1's 1024 shares.
                Write(cpu, "cpu.shares", Math.Max(2, weight * 1024 / 100).ToString(CultureInfo.InvariantCulture));
                break;
            }
        }
    }

    /// <summary>Moves a process (the VMM) into a VMM's cgroup.</summary>
    public void AddProcess(string name, int pid)
    {
        foreach (var dir in PathsOf(name))
        {
            Write(dir, "cgroup.procs", pid.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>How many times the kernel's OOM killer fired inside a VMM's cgroup (0 when unknown).</summary>
    public long OomKills(string name)
    {
        var (file, key) = Version switch
        {
            CgroupVersion.V2 => (Path.Combine(_root, _parent, name, "memory.events"), "oom_kill"),
            CgroupVersion.V1 => (Path.Combine(_root, "memory", _parent, name, "memory.oom_control"), "oom_kill"),
            _ => ("", ""),
        };
        if (file.Length == 0 || !File.Exists(file))
        {
            return 0;
        }
        foreach (var line in File.ReadAllLines(file))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[0] == key && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                return n;
            }
        }
        return 0;
    }

    /// <summary>Removes a VMM's cgroup once its processes are gone (a busy cgroup is left alone).</summary>
    public void Remove(string name)
    {
        foreach (var dir in PathsOf(name))
        {
            try
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir);
                }
            }
            catch (IOException)
            {
                // Still has a process (EBUSY): the next cleanup takes it.
            }
        }
    }

    private static void ValidateName(string name)
    {
        if (name.Length is 0 or > 64 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) || name.StartsWith('.'))
        {
            throw new ArgumentException($"cgroup name '{name}' must be 1-64 characters of [A-Za-z0-9._-] not starting with '.'", nameof(name));
        }
    }

    private static void EnableControllers(string dir, string controllers)
    {
        var file = Path.Combine(dir, "cgroup.subtree_control");
        if (!File.Exists(file))
        {
            return;
        }
        var current = File.ReadAllText(file);
        if (current.Contains("memory", StringComparison.Ordinal) && current.Contains("cpu", StringComparison.Ordinal))
        {
            return;
        }
        File.WriteAllText(file, controllers);
    }

    private static void Write(string dir, string file, string value, bool optional = false)
    {
        var path = Path.Combine(dir, file);
        if (optional && !File.Exists(path))
        {
            return;
        }
        try
        {
            File.WriteAllText(path, value);
        }
        catch (IOException) when (optional)
        {
        }
    }
}
