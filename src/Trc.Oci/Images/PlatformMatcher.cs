using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Trc.Oci.Images;

/// <summary>
/// Picks the manifest for one platform out of an index, following containerd's matcher: os and
/// architecture must match; the variant defaults to <c>v8</c> on arm64 and <c>v7</c> on arm; an exact
/// variant wins, then the nearest older compatible one (arm v7 runs v6 and v5, amd64 v3 runs v2 and v1);
/// ties go to the first entry in the index.
/// </summary>
public static class PlatformMatcher
{
    /// <summary>The annotation BuildKit puts on attestation (provenance, SBOM) entries of an index.</summary>
    public const string ReferenceTypeAnnotation = "vnd.docker.reference.type";

    /// <summary>The value of <see cref="ReferenceTypeAnnotation"/> on attestation entries.</summary>
    public const string AttestationManifest = "attestation-manifest";

    /// <summary>Selects the best manifest, throwing when none fits.</summary>
    /// <param name="index">The index.</param>
    /// <param name="os">The wanted operating system (<c>linux</c>).</param>
    /// <param name="architecture">The wanted architecture (<c>amd64</c>, <c>arm64</c>; <c>x86_64</c> and <c>aarch64</c> are understood).</param>
    /// <param name="variant">The wanted variant, or null for the architecture's default.</param>
    /// <returns>The descriptor of the chosen manifest.</returns>
    /// <exception cref="PlatformNotFoundException">No entry fits; the message lists those available.</exception>
    public static Descriptor Select(ImageIndex index, string os, string architecture, string? variant) =>
        TrySelect(index, os, architecture, variant, out var selected, out var error)
            ? selected
            : throw new PlatformNotFoundException(error, Available(index));

    /// <summary>Selects the best manifest without throwing.</summary>
    /// <param name="index">The index.</param>
    /// <param name="os">The wanted operating system.</param>
    /// <param name="architecture">The wanted architecture.</param>
    /// <param name="variant">The wanted variant, or null for the architecture's default.</param>
    /// <param name="selected">The chosen descriptor, when one fits.</param>
    /// <param name="error">What was wanted and what is available, when none fits.</param>
    /// <returns>Whether an entry fits.</returns>
    public static bool TrySelect(
        ImageIndex index, string os, string architecture, string? variant,
        [NotNullWhen(true)] out Descriptor? selected, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(index);
        var wantedArchitecture = NormalizeArchitecture(architecture);
        var wantedVariant = NormalizeVariant(wantedArchitecture, variant);
        selected = null;
        var bestRank = int.MaxValue;
        foreach (var entry in Candidates(index))
        {
            var platform = entry.Platform!;
            if (!string.Equals(platform.Os, os, StringComparison.OrdinalIgnoreCase)
                || NormalizeArchitecture(platform.Architecture) != wantedArchitecture)
            {
                continue;
            }
            var rank = VariantRank(wantedArchitecture, wantedVariant, NormalizeVariant(wantedArchitecture, platform.Variant));
            if (rank < bestRank)
            {
                bestRank = rank;
                selected = entry;
            }
        }
        if (selected is not null)
        {
            error = null;
            return true;
        }
        var wanted = wantedVariant is null ? $"{os}/{wantedArchitecture}" : $"{os}/{wantedArchitecture}/{wantedVariant}";
        var available = Available(index);
        error = available.Count == 0
            ? $"no manifest for {wanted}: the index lists no platforms"
            : $"no manifest for {wanted}; available: {string.Join(", ", available)}";
        return false;
    }

    /// <summary>The OCI architecture and default variant of a .NET architecture.</summary>
    /// <param name="architecture">Such as <see cref="RuntimeInformation.OSArchitecture"/>.</param>
    /// <returns>The OCI name (<c>amd64</c>) and variant (<c>v7</c> for arm, else null).</returns>
    /// <exception cref="PlatformNotSupportedException">The architecture has no OCI name here.</exception>
    public static (string Architecture, string? Variant) ToOci(Architecture architecture) => architecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => ("amd64", null),
        System.Runtime.InteropServices.Architecture.Arm64 => ("arm64", null),
        System.Runtime.InteropServices.Architecture.Arm => ("arm", "v7"),
        System.Runtime.InteropServices.Architecture.X86 => ("386", null),
        System.Runtime.InteropServices.Architecture.S390x => ("s390x", null),
        System.Runtime.InteropServices.Architecture.Ppc64le => ("ppc64le", null),
        System.Runtime.InteropServices.Architecture.RiscV64 => ("riscv64", null),
        System.Runtime.InteropServices.Architecture.LoongArch64 => ("loong64", null),
        _ => throw new PlatformNotSupportedException($"architecture {architecture} has no OCI name"),
    };

    /// <summary>The OCI architecture and variant of the machine this process runs on.</summary>
    /// <returns>The OCI name and variant of <see cref="RuntimeInformation.OSArchitecture"/>.</returns>
    public static (string Architecture, string? Variant) Host() => ToOci(RuntimeInformation.OSArchitecture);

    /// <summary>The platforms an index offers, skipping attestations, as <c>os/arch[/variant]</c>.</summary>
    /// <param name="index">The index.</param>
    /// <returns>The platforms, in index order.</returns>
    public static IReadOnlyList<string> Available(ImageIndex index) =>
        Candidates(index).Select(d => d.Platform!.ToString()).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>The entries of an index that are images for a platform (attestations and unknown platforms left out).</summary>
    /// <param name="index">The index.</param>
    /// <returns>The entries, in index order.</returns>
    public static IEnumerable<Descriptor> Candidates(ImageIndex index) =>
        index.Manifests.Where(d =>
            d.Platform is { } p
            && !(p.Os == "unknown" && p.Architecture == "unknown")
            && !(d.Annotations is { } a && a.TryGetValue(ReferenceTypeAnnotation, out var type) && type == AttestationManifest));

    /// <summary>Go's architecture name for the aliases people write (<c>x86_64</c> is <c>amd64</c>).</summary>
    internal static string NormalizeArchitecture(string architecture) => architecture.ToLowerInvariant() switch
    {
        "x86_64" or "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" or "i686" => "386",
        "armhf" => "arm",
        var other => other,
    };

    private static string? NormalizeVariant(string architecture, string? variant)
    {
        var v = string.IsNullOrEmpty(variant) ? null : variant.ToLowerInvariant();
        if (v is not null && v.All(char.IsAsciiDigit))
        {
            v = "v" + v;
        }
        return architecture switch
        {
            "arm64" => v is null or "v8.0" ? "v8" : v,
            "arm" => v ?? "v7",
            "amd64" => v is "v1" ? null : v,
            _ => v,
        };
    }

    // 0 is an exact match; n is a compatible variant n steps older; int.MaxValue is incompatible.
    private static int VariantRank(string architecture, string? wanted, string? offered)
    {
        if (wanted == offered)
        {
            return 0;
        }
        if (architecture is "arm" or "arm64" or "amd64" && Level(wanted) is { } w && Level(offered) is { } o && o < w)
        {
            // Prefer the newest older variant; any level match beats none.
            return w - o;
        }
        return int.MaxValue;
    }

    // amd64 without a variant is v1.
    private static int? Level(string? variant) =>
        variant is null ? 1
        : variant.Length > 1 && variant[0] == 'v' && int.TryParse(variant.AsSpan(1), out var level) ? level
        : null;
}

/// <summary>No manifest in an index fits the wanted platform.</summary>
public sealed class PlatformNotFoundException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was wanted and what is available.</param>
    /// <param name="available">The platforms the index offers.</param>
    public PlatformNotFoundException(string message, IReadOnlyList<string> available)
        : base(message)
    {
        Available = available;
    }

    /// <summary>The platforms the index offers, as <c>os/arch[/variant]</c>.</summary>
    public IReadOnlyList<string> Available { get; }
}
