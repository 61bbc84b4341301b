using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Tripline.Http.Auth;

/// <summary>
/// The listener's certificate: from PEM files (<c>--tls-cert-file</c>, <c>--tls-private-key-file</c>), read again
/// when their content changes so that cert-manager can rotate them under a running agent, or, when none is given, a
/// self-signed one made at start-up and logged by its SHA-256 fingerprint (clients pin it or are told to skip).
/// </summary>
internal sealed partial class ServingCertificate : IDisposable
{
    /// <summary>The files are compared at most this often, on a TLS handshake (a scrape every 15 s reads them every 15 s).</summary>
    internal static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(2);

    private readonly string? _certFile;
    private readonly string? _keyFile;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private X509Certificate2 _current;
    private byte[] _certBytes = [];
    private byte[] _keyBytes = [];
    private long _checkedAt;

    private ServingCertificate(X509Certificate2 certificate, string? certFile, string? keyFile, ILogger logger, TimeProvider time)
    {
        _current = certificate;
        _certFile = certFile;
        _keyFile = keyFile;
        _logger = logger;
        _time = time;
        _checkedAt = time.GetTimestamp();
    }

    /// <summary>Loads the files; throws <see cref="InvalidOperationException"/> naming the file when they are not a certificate and its key.</summary>
    public static ServingCertificate FromFiles(string certFile, string keyFile, ILogger logger, TimeProvider? time = null)
    {
        byte[] cert = File.ReadAllBytes(certFile), key = File.ReadAllBytes(keyFile);
        var certificate = Load(cert, key) ?? throw new InvalidOperationException(
            $"--tls-cert-file {certFile} and --tls-private-key-file {keyFile} are not a PEM certificate and its private key");
        var serving = new ServingCertificate(certificate, certFile, keyFile, logger, time ?? TimeProvider.System) { _certBytes = cert, _keyBytes = key };
        LogLoaded(logger, certFile, certificate.Subject, certificate.NotAfter.ToUniversalTime(), Fingerprint(certificate));
        return serving;
    }

    /// <summary>A certificate of its own for the node's name, loopback and the listen address, valid a year.</summary>
    public static ServingCertificate SelfSigned(string node, IPEndPoint listen, ILogger logger)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=tripline {node}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(node);
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        if (!listen.Address.Equals(IPAddress.Any) && !listen.Address.Equals(IPAddress.IPv6Any) && !IPAddress.IsLoopback(listen.Address)) names.AddIpAddress(listen.Address);
        request.CertificateExtensions.Add(names.Build());
        var now = DateTimeOffset.UtcNow;
        using var created = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(1));
        var certificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
        LogSelfSigned(logger, Fingerprint(certificate));
        return new ServingCertificate(certificate, null, null, logger, TimeProvider.System);
    }

    /// <summary>SHA-256 of the DER certificate, as <c>openssl x509 -fingerprint -sha256</c> prints it.</summary>
    public static string Fingerprint(X509Certificate2 certificate) =>
        string.Join(':', SHA256.HashData(certificate.RawData).Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>The certificate to serve now; when it comes from files, changed files are read first (at most every <see cref="CheckInterval"/>).</summary>
    public X509Certificate2 Current
    {
        get
        {
            if (_certFile is null || _time.GetElapsedTime(Volatile.Read(ref _checkedAt)) < CheckInterval) return Volatile.Read(ref _current);
            lock (_gate)
            {
                if (_time.GetElapsedTime(_checkedAt) >= CheckInterval)
                {
                    _checkedAt = _time.GetTimestamp();
                    Reload();
                }
                return _current;
            }
        }
    }

    private void Reload()
    {
        byte[] cert, key;
        try
        {
            cert = File.ReadAllBytes(_certFile!);
            key = File.ReadAllBytes(_keyFile!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogReloadFailed(_logger, _certFile!, e.Message);
            return;
        }
        if (cert.AsSpan().SequenceEqual(_certBytes) && key.AsSpan().SequenceEqual(_keyBytes)) return;
        // A rotation may be caught half-written (the certificate new, the key old): keep serving the old pair until both match.
        if (Load(cert, key) is not { } loaded)
        {
            LogReloadFailed(_logger, _certFile!, "not a PEM certificate and its private key (yet)");
            return;
        }
        _certBytes = cert;
        _keyBytes = key;
        Volatile.Write(ref _current, loaded);
        // The old certificate may still be in a handshake; it is left to the collector.
        LogLoaded(_logger, _certFile!, loaded.Subject, loaded.NotAfter.ToUniversalTime(), Fingerprint(loaded));
    }

    private static X509Certificate2? Load(byte[] cert, byte[] key)
    {
        try
        {
            using var pem = X509Certificate2.CreateFromPem(System.Text.Encoding.ASCII.GetString(cert), System.Text.Encoding.ASCII.GetString(key));
            // Exported and read back: a key that lives in the certificate's own store, as TLS wants it.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (CryptographicException)
        {
            return null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    public void Dispose() => _current.Dispose();

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "TLS certificate from {File}: {Subject}, valid until {NotAfter:u}, SHA-256 fingerprint {Fingerprint}")]
    private static partial void LogLoaded(ILogger logger, string file, string subject, DateTime notAfter, string fingerprint);

    [LoggerMessage(EventId = 21, Level = LogLevel.Warning, Message = "no --tls-cert-file: serving TLS with a self-signed certificate made at start-up, SHA-256 fingerprint {Fingerprint}; clients must pin it (or skip verification); give a certificate from your CA (cert-manager) for production")]
    private static partial void LogSelfSigned(ILogger logger, string fingerprint);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "TLS certificate {File} could not be read again ({Why}); still serving the previous one")]
    private static partial void LogReloadFailed(ILogger logger, string file, string why);
}
