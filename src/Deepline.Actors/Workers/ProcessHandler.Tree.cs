using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Deepline.Actors.Workers;

// Reaching every process of a task on cancellation or after its exit.
public sealed partial class ProcessHandler
{
    /// <summary>
    /// The processes of one task, found under /proc: the descendants of its root and the members of its process
    /// group. Each is identified by pid and start time, so a pid reused by an unrelated process is never signalled.
    /// </summary>
    internal static class ProcessTree
    {
        /// <summary>
        /// SIGTERM to the group and every known member, up to <paramref name="grace"/> for them to exit, then SIGKILL
        /// (members found again, including children spawned meanwhile). Returns when none is left running.
        /// </summary>
        public static async Task TerminateAsync(int? root, int group, string tree, TimeSpan grace)
        {
            var members = Snapshot(root, group, tree, new Dictionary<int, ulong>());
            if (members.Count == 0) return;
            Signal(group, members, SigTerm);
            if (await AllGone(group, tree, members, grace)) return;
            members = Snapshot(root, group, tree, members);
            Signal(group, members, SigKill);
            await AllGone(group, tree, members, KillWait);
        }

        private static void Signal(int group, IReadOnlyDictionary<int, ulong> members, int signal)
        {
            if (group > 1) _ = kill(-group, signal);
            var self = System.Environment.ProcessId;
            foreach (var (pid, start) in members)
            {
                if (pid > 1 && pid != self && Read(pid) is { } now && now.StartTime == start)
                    _ = kill(pid, signal);
            }
        }

        private static async Task<bool> AllGone(int group, string tree, IReadOnlyDictionary<int, ulong> members, TimeSpan within)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
            while (true)
            {
                if (!AnyRunning(group, tree, members)) return true;
                if (Stopwatch.GetTimestamp() >= deadline) return false;
                await Task.Delay(10);
            }
        }

        private static bool AnyRunning(int group, string tree, IReadOnlyDictionary<int, ulong> members)
        {
            foreach (var (pid, start) in members)
            {
                if (Read(pid) is { State: not 'Z' } s && s.StartTime == start) return true;
            }
            return All().Any(s => s.State != 'Z' && (s.Group == group || InTree(s.Pid, tree)));
        }

        /// <summary>Whether the process carries the task's tree variable (found even after it left the group and was orphaned).</summary>
        private static bool InTree(int pid, string tree)
        {
            byte[] environ;
            try { environ = File.ReadAllBytes($"/proc/{pid}/environ"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
            var needle = Encoding.ASCII.GetBytes($"{TreeVariable}={tree}\0");
            return environ.AsSpan().IndexOf(needle) >= 0;
        }

        /// <summary>The group's members plus the descendants of the root and of every member already known.</summary>
        private static Dictionary<int, ulong> Snapshot(int? root, int group, string tree, IReadOnlyDictionary<int, ulong> known)
        {
            var all = All().ToList();
            var self = System.Environment.ProcessId;
            var result = new Dictionary<int, ulong>(known);
            var queue = new Queue<int>();
            foreach (var s in all)
            {
                if (s.Pid != self && s.State != 'Z' && (s.Group == group || s.Pid == root || InTree(s.Pid, tree)) && result.TryAdd(s.Pid, s.StartTime))
                    queue.Enqueue(s.Pid);
            }
            foreach (var pid in known.Keys) queue.Enqueue(pid);
            var children = all.ToLookup(s => s.Parent);
            while (queue.TryDequeue(out var pid))
            {
                foreach (var child in children[pid])
                {
                    if (child.Pid != self && child.State != 'Z' && result.TryAdd(child.Pid, child.StartTime))
                        queue.Enqueue(child.Pid);
                }
            }
            return result;
        }

        private static IEnumerable<Stat> All()
        {
            IEnumerable<string> dirs;
            try { dirs = Directory.EnumerateDirectories("/proc"); }
            catch (IOException) { yield break; }
            foreach (var dir in dirs)
            {
                if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && Read(pid) is { } s)
                    yield return s;
            }
        }

        private static Stat? Read(int pid)
        {
            string text;
            try { text = File.ReadAllText($"/proc/{pid}/stat"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
            // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
            // cstime priority nice threads itrealvalue starttime ..."; comm may hold spaces and parentheses.
            var close = text.LastIndexOf(')');
            if (close < 0) return null;
            var fields = text[(close + 2)..].Split(' ');
            if (fields.Length < 20) return null;
            return new Stat(pid, fields[0][0],
                int.Parse(fields[1], CultureInfo.InvariantCulture),
                int.Parse(fields[2], CultureInfo.InvariantCulture),
                ulong.Parse(fields[19], CultureInfo.InvariantCulture));
        }

        private readonly record struct Stat(int Pid, char State, int Parent, int Group, ulong StartTime);

        [DllImport("libc", SetLastError = true)]
        private static extern int kill(int pid, int sig);
    }
}
