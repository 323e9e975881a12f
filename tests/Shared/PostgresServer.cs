using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Deepline.Tests.Shared;

/// <summary>
/// A throwaway PostgreSQL server: Debian's binaries (<c>initdb</c>, <c>postgres</c> under /usr/lib/postgresql/N/bin),
/// a fresh cluster in a temporary directory, trust authentication, 127.0.0.1 on a free port. For tests fsync,
/// synchronous_commit and full-page writes are off (a test server is thrown away, durability is not what it proves); a
/// benchmark asks for <c>durable</c>, the server's own defaults, since a commit's WAL flush is what it measures. Runs as the <c>postgres</c> user when the tests run as root,
/// since PostgreSQL refuses to run as root. Dispose stops it and deletes the directory.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string User = "deepline";

    private readonly string _dir;
    private readonly string[] _arguments;
    private readonly bool _asRoot;
    private Process _process;

    private PostgresServer(string dir, int port, string[] arguments, bool asRoot, Process process)
    {
        (_dir, Port, _arguments, _asRoot, _process) = (dir, port, arguments, asRoot, process);
    }

    /// <summary>The postmaster's own pid (runuser may stand between it and us).</summary>
    private int? PostmasterPid()
    {
        try
        {
            var first = File.ReadLines(Path.Combine(_dir, "data", "postmaster.pid")).FirstOrDefault();
            return int.TryParse(first, out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public int Port { get; }

    /// <summary>Npgsql connection string for <paramref name="database"/> (default: the server's own "postgres").</summary>
    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username={User};Database={database};Pooling=true;Timeout=15;Command Timeout=30";

    public static string? BinDirectory() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;

    /// <param name="durable">fsync, synchronous_commit and full_page_writes as a production server has them (on).</param>
    public static async Task<PostgresServer> StartAsync(bool durable = false)
    {
        var bin = BinDirectory() ?? throw new InvalidOperationException(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install them with `apt-get install -y postgresql` (./build.sh test does this)");
        var dir = Directory.CreateTempSubdirectory("deepline-pg-").FullName;
        var asRoot = Environment.UserName == "root";
        if (asRoot) await Run("chown", ["postgres", dir]);
        var data = Path.Combine(dir, "data");
        await Run(Path.Combine(bin, "initdb"), ["-D", data, "-A", "trust", "-U", User, "--no-sync", "-E", "UTF8", "--locale", "C"], asRoot);

        var port = Loopback.FreePort();
        var durability = durable ? "on" : "off";
        string[] arguments = [Path.Combine(bin, "postgres"), "-D", data, "-p", port.ToString(), "-h", "127.0.0.1", "-k", dir, "-c", $"fsync={durability}",
             "-c", $"synchronous_commit={durability}", "-c", $"full_page_writes={durability}", "-c", "max_connections=200"];
        var server = new PostgresServer(dir, port, arguments, asRoot, Spawn(arguments, asRoot));
        await server.AwaitAcceptingAsync();
        return server;
    }

    /// <summary>
    /// Stops the server as an operator or a crash would (SIGINT: fast shutdown, every session ended; SIGKILL: the
    /// postmaster dies and its backends follow), waits for it to be gone, and returns once it is started again on the same
    /// port and data, accepting connections (a SIGKILL's restart replays the WAL first).
    /// </summary>
    public async Task StopAsync(bool kill = false)
    {
        if (_process.HasExited) return;
        if (PostmasterPid() is { } pid) Kill(pid, kill ? 9 : 2);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(cts.Token);
        _process.Dispose();
    }

    /// <summary>Starts a stopped server again (same port, same data) and returns once it accepts connections.</summary>
    public async Task StartAgainAsync()
    {
        // After a SIGKILL the old backends notice their postmaster's death within moments; until the last is gone the
        // new postmaster refuses the shared memory they still hold and exits: start it again.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            _process = Spawn(_arguments, _asRoot);
            try
            {
                await AwaitAcceptingAsync();
                return;
            }
            catch (InvalidOperationException) when (_process.HasExited && DateTime.UtcNow < deadline)
            {
                _process.Dispose();
                await Task.Delay(200);
            }
        }
    }

    private static Process Spawn(string[] arguments, bool asRoot)
    {
        var process = Process.Start(Start(arguments[0], arguments[1..], asRoot)) ?? throw new InvalidOperationException("postgres did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private async Task AwaitAcceptingAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await AcceptsAsync())
        {
            if (_process.HasExited) throw new InvalidOperationException($"postgres exited with {_process.ExitCode} on port {Port}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"postgres on port {Port} did not accept connections within 60 s");
            await Task.Delay(50);
        }
    }

    /// <summary>Creates an empty database (a store of its own for one node or one cluster) and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        // A server that just came up on a loaded machine has dropped a first connection; a pooled one may be stale too.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var db = new Npgsql.NpgsqlConnection(ConnectionString());
                await db.OpenAsync();
                await using var cmd = db.CreateCommand();
                cmd.CommandText = $"CREATE DATABASE \"{name}\"";
                await cmd.ExecuteNonQueryAsync();
                return ConnectionString(name);
            }
            catch (Npgsql.PostgresException e) when (e.SqlState == "42P04" && attempt > 1)
            {
                return ConnectionString(name); // created by the attempt whose answer was lost
            }
            catch (Npgsql.PostgresException e) when (e.SqlState == "23505" && attempt < 6)
            {
                // The attempt whose answer was lost is still creating it on the server (CI, loaded machine): the next
                // attempt finds it created (42P04).
                await Task.Delay(200 * attempt);
            }
            catch (Npgsql.NpgsqlException e) when (e is not Npgsql.PostgresException && attempt < 4)
            {
                Npgsql.NpgsqlConnection.ClearAllPools();
                await Task.Delay(200 * attempt);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGQUIT to the postmaster: immediate shutdown, nothing to keep.
            if (PostmasterPid() is { } pid) Kill(pid, 3);
            if (!_process.WaitForExit(10_000)) _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync();
        _process.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private async Task<bool> AcceptsAsync()
    {
        try
        {
            // Unpooled: a pooled connection from before a restart would open without asking the new server anything.
            await using var db = new Npgsql.NpgsqlConnection(ConnectionString().Replace("Pooling=true", "Pooling=false") + ";Timeout=2");
            await db.OpenAsync();
            await using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT 1";
            await cmd.ExecuteScalarAsync();
            return true;
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or SocketException or IOException or TimeoutException)
        {
            return false;
        }
    }

    private static ProcessStartInfo Start(string file, string[] args, bool asPostgres)
    {
        var info = new ProcessStartInfo(asPostgres ? "runuser" : file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asPostgres)
        {
            foreach (var a in new[] { "-u", "postgres", "--", file }) info.ArgumentList.Add(a);
        }
        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }

    private static async Task Run(string file, string[] args, bool asPostgres = false)
    {
        using var process = Process.Start(Start(file, args, asPostgres)) ?? throw new InvalidOperationException($"{file} did not start");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(file)} failed with exit code {process.ExitCode}: {await stderr}{await stdout}");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
