using k8s.KubeConfigModels;
using Tripline.Correlation.Manifests;
using YamlDotNet.RepresentationModel;

namespace Tripline.Correlation.Kubernetes;

/// <summary>
/// Reads a kubeconfig file into KubernetesClient's <see cref="K8SConfiguration"/> without KubernetesYaml, whose
/// reflection-based deserializer is built from member metadata tokens that the published Native AOT executable does
/// not have (and whose models hold a <c>dynamic</c> member that build-time JSON metadata cannot describe). Every
/// field KubernetesClient uses to connect is read, under the names kubectl writes; extensions and preferences are not.
/// </summary>
internal static class KubeconfigReader
{
    /// <summary>The file's configuration; relative certificate and key paths in it resolve against its directory.</summary>
    public static K8SConfiguration Read(string path)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(path))
        {
            stream.Load(reader);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new InvalidDataException("not a kubeconfig: the file holds no mapping");
        }
        return new K8SConfiguration
        {
            FileName = Path.GetFullPath(path),
            ApiVersion = Text(root, "apiVersion"),
            Kind = Text(root, "kind"),
            CurrentContext = Text(root, "current-context"),
            Clusters = Items(root, "clusters", item => new k8s.KubeConfigModels.Cluster
            {
                Name = Text(item, "name"),
                ClusterEndpoint = Map(item, "cluster") is { } cluster ? new ClusterEndpoint
                {
                    Server = Text(cluster, "server"),
                    CertificateAuthority = Text(cluster, "certificate-authority"),
                    CertificateAuthorityData = Text(cluster, "certificate-authority-data"),
                    TlsServerName = Text(cluster, "tls-server-name"),
                    SkipTlsVerify = Flag(cluster, "insecure-skip-tls-verify"),
                } : null,
            }),
            Users = Items(root, "users", item => new User
            {
                Name = Text(item, "name"),
                UserCredentials = Map(item, "user") is { } user ? new UserCredentials
                {
                    ClientCertificate = Text(user, "client-certificate"),
                    ClientCertificateData = Text(user, "client-certificate-data"),
                    ClientKey = Text(user, "client-key"),
                    ClientKeyData = Text(user, "client-key-data"),
                    Token = Text(user, "token"),
                    UserName = Text(user, "username"),
                    Password = Text(user, "password"),
                    Impersonate = Text(user, "as"),
                    ImpersonateGroups = Values(user, "as-groups", static node => Scalar(node) ?? ""),
                    AuthProvider = Map(user, "auth-provider") is { } provider ? new AuthProvider
                    {
                        Name = Text(provider, "name"),
                        Config = Strings(provider, "config"),
                    } : null,
                    ExternalExecution = Map(user, "exec") is { } exec ? new ExternalExecution
                    {
                        ApiVersion = Text(exec, "apiVersion"),
                        Command = Text(exec, "command"),
                        Arguments = Values(exec, "args", static node => Scalar(node) ?? ""),
                        EnvironmentVariables = Values(exec, "env", static node => Strings(node as YamlMappingNode) ?? []),
                        InstallHint = Text(exec, "installHint"),
                        ProvideClusterInfo = Flag(exec, "provideClusterInfo"),
                    } : null,
                } : null,
            }),
            Contexts = Items(root, "contexts", item => new Context
            {
                Name = Text(item, "name"),
                ContextDetails = Map(item, "context") is { } context ? new ContextDetails
                {
                    Cluster = Text(context, "cluster"),
                    User = Text(context, "user"),
                    Namespace = Text(context, "namespace"),
                } : null,
            }),
        };
    }

    private static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node : null;

    private static string? Scalar(YamlNode? node) => node is YamlScalarNode scalar && !YamlJson.IsNull(scalar) ? scalar.Value : null;

    private static string? Text(YamlMappingNode map, string key) => YamlJson.Text(map, key);

    private static bool Flag(YamlMappingNode map, string key) => Text(map, key) is { } text && YamlJson.TryReadBoolean(text, out bool value) && value;

    private static YamlMappingNode? Map(YamlMappingNode map, string key) => Child(map, key) as YamlMappingNode;

    private static List<T> Items<T>(YamlMappingNode map, string key, Func<YamlMappingNode, T> read) =>
        Child(map, key) is YamlSequenceNode sequence ? [.. sequence.OfType<YamlMappingNode>().Select(read)] : [];

    private static List<T> Values<T>(YamlMappingNode map, string key, Func<YamlNode, T> read) =>
        Child(map, key) is YamlSequenceNode sequence ? [.. sequence.Select(read)] : [];

    private static Dictionary<string, string>? Strings(YamlMappingNode? map, string key) => map is null ? null : Strings(Map(map, key));

    private static Dictionary<string, string>? Strings(YamlMappingNode? map) =>
        map?.Children.Where(pair => pair.Key is YamlScalarNode { Value: not null })
            .ToDictionary(pair => ((YamlScalarNode)pair.Key).Value!, pair => Scalar(pair.Value) ?? "", StringComparer.Ordinal);
}
