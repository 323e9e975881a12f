using System.Collections.Immutable;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Deepline.Node.Configuration;

namespace Deepline.Node.Security;

/// <summary>
/// The keys in force. Re-read when the file changes or the process gets SIGHUP, so that a key can be added or
/// revoked without a restart; a file that no longer parses keeps the previous keys (and says why in the log),
/// because locking every caller out over a typo would be worse than a late revocation.
/// </summary>
public sealed class KeyRing : IDisposable
{
    private readonly string? _path;
    private readonly ILogger<KeyRing> _log;
    private readonly FileSystemWatcher? _watcher;
    private readonly PosixSignalRegistration? _sighup;
    private readonly Lock _reloading = new();
    private volatile ApiKey[] _keys;

    /// <summary>Loads the keys file (a bad one is a <see cref="ConfigException"/>); null path: the API is open.</summary>
    public KeyRing(AuthConfig config, ILogger<KeyRing> log)
    {
        _log = log;
        if (!config.Enabled)
        {
            _keys = [];
            return;
        }
        _path = Path.GetFullPath(config.KeysFile);
        if (!File.Exists(_path))
            throw new ConfigException($"orchestrator.auth.keys_file: \"{config.KeysFile}\" does not exist");
        _keys = [.. KeysFile.Load(_path)];
        // Editors replace files by rename, so watch the directory for the name rather than the file itself.
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(_path)!, Path.GetFileName(_path))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        _watcher.Changed += (_, _) => Reload("the file changed");
        _watcher.Created += (_, _) => Reload("the file changed");
        _watcher.Renamed += (_, _) => Reload("the file changed");
        _watcher.EnableRaisingEvents = true;
        if (!OperatingSystem.IsWindows())
            _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
            {
                ctx.Cancel = true; // SIGHUP means "reload" here, not "terminate"
                Reload("SIGHUP");
            });
    }

    public bool Enabled => _path is not null;

    public int Count => _keys.Length;

    /// <summary>The key whose digest equals the presented key's; every entry is compared, in constant time each.</summary>
    public ApiKey? Match(string presented)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        ApiKey? found = null;
        foreach (var key in _keys)
            if (CryptographicOperations.FixedTimeEquals(digest, key.Sha256.AsSpan()))
                found = key;
        return found;
    }

    public void Reload(string why)
    {
        if (_path is null) return;
        lock (_reloading)
        {
            try
            {
                var keys = KeysFile.Load(_path);
                _keys = [.. keys];
                _log.LogInformation("API keys reloaded ({Why}): {Count} key(s)", why, keys.Length);
            }
            catch (ConfigException e)
            {
                // Mid-write reads land here too; the watcher fires again when the write completes.
                _log.LogError("API keys not reloaded ({Why}), keeping the previous {Count}: {Problem}", why, _keys.Length, e.Message);
            }
        }
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _sighup?.Dispose();
    }
}
