using System.IO.Enumeration;

namespace Tripline.Capture.Live;

/// <summary>Lists the network interfaces of the agent's network namespace and matches their names against globs.</summary>
internal sealed class InterfaceDiscovery(string root)
{
    public const string DefaultRoot = "/sys/class/net";

    // Name → ifindex of the last listing; an index is read once per appearance of a name.
    private Dictionary<string, int> _known = new(StringComparer.Ordinal);

    public string Root { get; } = root;

    public static bool Matches(string name, IReadOnlyList<string> globs)
    {
        foreach (string glob in globs)
        {
            if (FileSystemName.MatchesSimpleExpression(glob, name, ignoreCase: false)) return true;
        }
        return false;
    }

    /// <summary>Every interface present now with its kernel index; names whose index cannot be read (gone meanwhile) are left out.</summary>
    public IReadOnlyDictionary<string, int> List()
    {
        var next = new Dictionary<string, int>(_known.Count, StringComparer.Ordinal);
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries(Root);
            foreach (string path in entries)
            {
                string name = Path.GetFileName(path);
                if (_known.TryGetValue(name, out int index) || TryReadIndex(name, out index)) next[name] = index;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return _known;
        }
        _known = next;
        return next;
    }

    /// <summary>Forgets a name so that its index is read again (the interface may have been recreated under that name).</summary>
    public void Forget(string name) => _known.Remove(name);

    private bool TryReadIndex(string name, out int index)
    {
        try
        {
            return int.TryParse(File.ReadAllText(Path.Combine(Root, name, "ifindex")).AsSpan().Trim(), out index);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            index = 0;
            return false;
        }
    }
}
