using System.Collections.Immutable;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Deepline.Node.Configuration;

namespace Deepline.Node.Security;

/// <summary>
/// The keys in force. Re-read when the file changes or the process gets SIGHUP, so that a key can be added or
/// revoked without a restart; a file that no longer parses, or that is gone, keeps the previous keys (and says why in
/// the log and in <see cref="Problem"/>, shown by /health), because locking every caller out over a typo or a
/// half-finished deploy would be worse than a late revocation. Revoke by editing the file, not by deleting it.
/// Open streams (/ui/events) hear <see cref="Reloaded"/> and end when their key is no longer in force.
/// </summary>
public sealed class KeyRing : IDisposable
{
    private readonly string? _path;
    private readonly ILogger<KeyRing> _log;
    private readonly FileSystemWatcher? _watcher;
    private readonly PosixSignalRegistration? _sighup;
    private readonly Lock _reloading = new();
    private volatile ApiKey[] _keys;
    private volatile string? _problem;

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
        _watcher.Deleted += (_, _) => Reload("the file was deleted");
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

    /// <summary>Why the keys in force are not the file's (it is missing or does not parse); null when they are.</summary>
    public string? Problem => _problem;

    /// <summary>Raised after every reload that changed the keys in force (on the reloading thread).</summary>
    public event Action? Reloaded;

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
            if (!File.Exists(_path))
            {
                _problem = $"the keys file is missing; the {_keys.Length} key(s) loaded before stay in force until it is back";
                _log.LogError("API keys not reloaded ({Why}): {Path}: {Problem}", why, _path, _problem);
                return;
            }
            try
            {
                var keys = KeysFile.Load(_path);
                _keys = [.. keys];
                _problem = null;
                _log.LogInformation("API keys reloaded ({Why}): {Count} key(s)", why, keys.Length);
            }
            catch (Exception e) when (e is ConfigException or IOException or UnauthorizedAccessException)
            {
                // Mid-write reads land here too; the watcher fires again when the write completes.
                _problem = $"the keys file could not be read; the {_keys.Length} key(s) loaded before stay in force (the log says why)";
                _log.LogError("API keys not reloaded ({Why}), keeping the previous {Count}: {Problem}", why, _keys.Length, e.Message);
                return;
            }
        }
        Reloaded?.Invoke();
    }

    /// <summary>Whether the key presented in <paramref name="request"/>'s Authorization header is still in force for <paramref name="user"/>.</summary>
    public bool StillHolds(HttpRequest request, System.Security.Claims.ClaimsPrincipal user)
    {
        if (!Enabled) return true;
        var authorization = request.Headers.Authorization.ToString();
        // The admin header's key is the configuration's, not the file's: a reload does not change it.
        if (authorization.Length == 0) return true;
        if (!authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return false;
        return Match(authorization[7..].Trim()) is { } key && key.Name == user.Identity?.Name && user.IsInRole(key.Role.ToString())
               && (key.Role != Role.submitter || key.ClientId == user.ClientScope());
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _sighup?.Dispose();
    }
}
