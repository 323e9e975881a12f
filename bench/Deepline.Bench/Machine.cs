using System.Globalization;

namespace Deepline.Bench;

public static class Machine
{
    /// <summary>"2 cores (nproc), AMD EPYC, 23.4 GiB RAM, Linux ..., .NET ..."</summary>
    public static string Describe()
    {
        var cpu = ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            ?? "unknown CPU";
        var memKb = ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))?
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var ram = memKb is not null && long.TryParse(memKb, CultureInfo.InvariantCulture, out var kb)
            ? $"{kb / 1024.0 / 1024.0:0.0} GiB RAM"
            : "unknown RAM";
        return $"{Environment.ProcessorCount} cores (nproc), {cpu}, {ram}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, " +
               $".NET {Environment.Version}, {(System.Runtime.GCSettings.IsServerGC ? "Server" : "workstation")} GC";
    }

    public static string? RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Deepline.Actors.sln"))) return dir.FullName;
        }
        return null;
    }

    private static IEnumerable<string> ReadLines(string path)
    {
        try { return File.ReadAllLines(path); }
        catch (IOException) { return []; }
    }
}
