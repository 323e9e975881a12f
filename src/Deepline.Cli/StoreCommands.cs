using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>The node's store: an online backup of the embedded SQLite store (GET /store/backup, admin).</summary>
public static class StoreCommands
{
    /// <summary>The node copies the whole store before it answers: a large store takes a while.</summary>
    private static readonly TimeSpan CopyWithin = TimeSpan.FromMinutes(30);

    public static Command Build(DeeplineCli.Env env)
    {
        var store = new Command("store", "The node's store");
        var path = new Argument<FileInfo>("path") { Description = "Where to write the copy (a new file; see --force)" };
        var force = new Option<bool>("--force") { Description = "Replace the file if it exists" };
        store.Subcommands.Add(env.Leaf("backup", "Take an online, consistent copy of the node's SQLite store while it runs (admin)",
            c => Backup(c, c.Get(path), c.Get(force)), path, force));
        return store;
    }

    private static async Task<int> Backup(CommandContext c, FileInfo path, bool force)
    {
        if (path.Exists && !force)
            throw new CliException(ExitCodes.Usage, $"{path.FullName} exists; pass --force to replace it");
        if (path.Directory is { Exists: false } dir)
            throw new CliException(ExitCodes.Usage, $"directory not found: {dir.FullName}");
        var started = System.Diagnostics.Stopwatch.StartNew();
        var headers = await c.Node.DownloadAsync("/store/backup", path.FullName, admin: true, CopyWithin, c.Cancellation);
        path.Refresh();
        var ordering = headers.TryGetValues("X-Deepline-Journal-Ordering", out var values) ? values.FirstOrDefault() : null;
        if (c.Out.Json)
        {
            c.Out.WriteJson(new JsonObject
            {
                ["path"] = path.FullName,
                ["bytes"] = path.Length,
                ["journal_ordering"] = ordering is null ? null : long.Parse(ordering, CultureInfo.InvariantCulture),
                ["seconds"] = Math.Round(started.Elapsed.TotalSeconds, 3),
            });
            return ExitCodes.Ok;
        }
        c.Out.Line($"Backup written to {path.FullName}: {path.Length.ToString("N0", CultureInfo.InvariantCulture)} bytes, " +
                   $"journal ordering {ordering ?? "unknown"}, in {started.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
        c.Out.Line("Restore: stop the node, put this file in place of data.dir/deepline.db, start the node.");
        return ExitCodes.Ok;
    }
}
