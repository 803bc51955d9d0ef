using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Trc.Edge.Tests.Support;

/// <summary>A self-signed certificate for one hostname, also written as PEM files for openssl and curl.</summary>
public sealed class TestCertificate : IDisposable
{
    private TestCertificate(string hostname, X509Certificate2 certificate, string directory)
    {
        Hostname = hostname;
        Certificate = certificate;
        CertificateFile = Path.Combine(directory, hostname + ".crt");
        KeyFile = Path.Combine(directory, hostname + ".key");
        File.WriteAllText(CertificateFile, certificate.ExportCertificatePem());
        using var key = certificate.GetECDsaPrivateKey()!;
        File.WriteAllText(KeyFile, key.ExportPkcs8PrivateKeyPem());
    }

    public string Hostname { get; }

    /// <summary>With its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public string CertificateFile { get; }

    public string KeyFile { get; }

    /// <summary>The SHA-256 fingerprint as openssl prints it (upper-case hex, colons).</summary>
    public string Fingerprint => string.Join(':', Certificate.GetCertHash(HashAlgorithmName.SHA256).Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));

    public static TestCertificate Create(string hostname, string directory)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={hostname}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(hostname);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        // A PKCS#12 round trip gives SslStream a key it can use on every platform.
        var usable = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
        return new TestCertificate(hostname, usable, directory);
    }

    public void Dispose() => Certificate.Dispose();
}
