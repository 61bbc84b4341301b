using System.Diagnostics;

namespace Tripline.Tests.Support;

/// <summary>
/// The <c>openssl</c> command line: certificates as an operator (or cert-manager) would make them, and a TLS client
/// that is not .NET's, to see what a listener really serves. Without openssl the tests that use it fail, loudly.
/// </summary>
internal static class OpenSsl
{
    public static string Run(string script, string workingDirectory)
    {
        Assert.True(File.Exists("/usr/bin/openssl"), "openssl not found: install Debian's 'openssl' package"
            + (Environment.GetEnvironmentVariable("CI") == "true" ? " (CI=true: .ci/run must install it)" : ""));
        var info = new ProcessStartInfo("/bin/bash", ["-euo", "pipefail", "-c", script])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "openssl did not finish in 60 s: " + script);
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"openssl failed ({process.ExitCode}): {script}\n{stderr.Result}");
        return stdout.Result;
    }

    /// <summary>A CA (<c>ca.crt</c>), and a serving certificate it signed for 127.0.0.1 and localhost (<c>{name}.crt</c>, <c>{name}.key</c>).</summary>
    public static (string Ca, string Cert, string Key) IssueServingCertificate(string directory, string name)
    {
        if (!File.Exists(Path.Combine(directory, "ca.crt")))
        {
            Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=tripline-test-ca 2>/dev/null", directory);
        }
        Run($"""
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name} 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > {name}.ext
            openssl x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out {name}.crt -days 2 -extfile {name}.ext 2>/dev/null
            """, directory);
        return (Path.Combine(directory, "ca.crt"), Path.Combine(directory, name + ".crt"), Path.Combine(directory, name + ".key"));
    }

    /// <summary>SHA-256 fingerprint of a PEM certificate file, as openssl prints it (AB:CD:…).</summary>
    public static string Fingerprint(string certFile, string directory) =>
        Run($"openssl x509 -in {certFile} -noout -fingerprint -sha256", directory).Trim().Split('=')[1];

    /// <summary>Connects with <c>openssl s_client</c> and returns the fingerprint of the certificate the server presented.</summary>
    public static string ServedFingerprint(int port, string directory) =>
        Run($"openssl s_client -connect 127.0.0.1:{port} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256", directory).Trim().Split('=')[1];
}
