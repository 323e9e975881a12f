using System.Collections.Immutable;
using System.Text.Json;
using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>
/// A compact notation for DAGs in test tables: tasks separated by spaces, "id&lt;dep1,dep2" lists a task's
/// dependencies. "a b&lt;a c&lt;a d&lt;b,c" is the diamond.
/// </summary>
internal static class Dag
{
    public const string Diamond = "a b<a c<a d<b,c";

    public static TaskSpec Task(string id, params string[] deps) =>
        new(id, "noop", TaskSpec.DefaultPool, null, [.. deps]);

    public static ImmutableArray<TaskSpec> Tasks(string dag) =>
        [.. dag.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(token =>
        {
            var parts = token.Split('<');
            return Task(parts[0], parts.Length > 1 ? parts[1].Split(',') : []);
        })];

    public static RunSpec Spec(string dag, string runId = "run-1") => Spec(Tasks(dag), runId);

    public static RunSpec Spec(IEnumerable<TaskSpec> tasks, string runId = "run-1") =>
        new(runId, "wf", "client-1", [.. tasks]);

    /// <summary>t0 &lt;- t1 &lt;- ... : <paramref name="length"/> tasks, depth length - 1.</summary>
    public static IEnumerable<TaskSpec> Chain(int length, string prefix = "t") =>
        Enumerable.Range(0, length).Select(i => i == 0 ? Task($"{prefix}0") : Task($"{prefix}{i}", $"{prefix}{i - 1}"));

    public static SubmissionPolicy Policy(int maxDepth = 50) => SubmissionPolicy.Default with { MaxDependencyDepth = maxDepth };

    /// <summary>
    /// The reported cycle must be a real one in the submitted spec: it closes on itself, and every consecutive
    /// pair is a depends_on edge (all read in the same direction), visiting each task once.
    /// </summary>
    public static void AssertRealCycle(RunSpec spec, ImmutableArray<string>? reported)
    {
        Assert.NotNull(reported);
        var cycle = reported.Value;
        Assert.True(cycle.Length >= 2, $"cycle too short: [{string.Join(", ", cycle)}]");
        Assert.Equal(cycle[0], cycle[^1]);
        Assert.Equal(cycle.Length - 1, cycle.Take(cycle.Length - 1).Distinct().Count());

        var deps = spec.Tasks.ToDictionary(t => t.TaskId, t => t.DependsOn.IsDefault ? [] : t.DependsOn.ToHashSet());
        bool Edge(string from, string to) => deps.TryGetValue(from, out var ds) && ds.Contains(to);
        var pairs = cycle.Zip(cycle.Skip(1)).ToList();
        var forward = pairs.All(p => Edge(p.First, p.Second));
        var backward = pairs.All(p => Edge(p.Second, p.First));
        Assert.True(forward || backward, $"[{string.Join(" -> ", cycle)}] is not a path of depends_on edges");
    }

    public static TaskCounts Recount(WorkflowState s)
    {
        int N(TaskState st) => s.Tasks.Values.Count(t => t.State == st);
        return new TaskCounts(N(TaskState.PENDING), N(TaskState.QUEUED), N(TaskState.RUNNING), N(TaskState.SUCCEEDED),
            N(TaskState.FAILED), N(TaskState.CANCELLED), N(TaskState.SKIPPED));
    }

    /// <summary>Everything in a state that a decision can change, as text (records holding immutable maps do not compare by value).</summary>
    public static string Render(WorkflowState s, bool heartbeats = true) =>
        $"{s.RunId} {s.Status} created={s.CreatedAt:O} updated={s.UpdatedAt:O} {s.Counts} cancel={s.Cancel} " +
        $"ignored=[{string.Join(", ", s.Ignored)}] tasks=" +
        string.Join("; ", s.OrderedTasks.Select(t =>
            $"{t.TaskId}:{t.State}:{t.Attempts}:{t.WorkerId}:{t.UpdatedAt:O}:{(heartbeats ? t.LastHeartbeatAt?.ToString("O") : "")}:{t.Error}:{t.Result?.GetRawText()}"));
}

/// <summary>
/// Drives one run through <see cref="WorkflowDecider"/> and <see cref="WorkflowState.Apply"/> the way the entity
/// does: journalled events and transient ones are applied in order, on a clock that only moves when told to.
/// </summary>
internal sealed class RunHarness(SubmissionPolicy? policy = null)
{
    public static readonly DateTimeOffset T0 = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    public SubmissionPolicy Policy { get; } = policy ?? SubmissionPolicy.Default;
    public DateTimeOffset Now { get; private set; } = T0;
    public WorkflowState? State { get; private set; }
    public List<IRunEvent> Journal { get; } = [];
    public string RunId { get; private set; } = "run-1";

    public WorkflowState S => State ?? throw new InvalidOperationException("no run submitted");

    public static RunHarness Submitted(string dag, string script = "", SubmissionPolicy? policy = null)
    {
        var h = new RunHarness(policy);
        h.Accept(h.Send(new SubmitRun(Dag.Spec(dag, h.RunId))));
        h.Run(script);
        return h;
    }

    public static RunHarness Submitted(RunSpec spec, SubmissionPolicy? policy = null)
    {
        var h = new RunHarness(policy) { RunId = spec.RunId };
        h.Accept(h.Send(new SubmitRun(spec)));
        return h;
    }

    public void Advance(double seconds = 1) => Now = Now.AddSeconds(seconds);

    public Decision Send(IRunCommand command)
    {
        var d = WorkflowDecider.Decide(State, command, Now, Policy);
        foreach (var e in d.Persist)
        {
            Journal.Add(e);
            State = e is RunSubmitted submitted ? WorkflowState.Create(submitted) : S.Apply(e);
        }
        foreach (var e in d.Transient) State = S.Apply(e);
        return d;
    }

    public TaskState this[string taskId] => S.Tasks[taskId].State;

    /// <summary>Runs a script of steps, each one second after the last and each required to be accepted.</summary>
    public void Run(string script)
    {
        foreach (var step in script.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            Advance();
            Accept(Send(Parse(step)), step);
        }
    }

    /// <summary>
    /// One step: "start:a@w1", "ok:a", "fail:a", "ack:a" (TASK_CANCELLED), "hb:a", "cancel", "cancel!" (force),
    /// "finalise", "timeout". Without "@worker" a task event comes from the task's current worker, or "w1".
    /// </summary>
    public IRunCommand Parse(string step)
    {
        var (verb, rest) = step.IndexOf(':') is var i and >= 0 ? (step[..i], step[(i + 1)..]) : (step, "");
        var (task, worker) = rest.IndexOf('@') is var j and >= 0 ? (rest[..j], rest[(j + 1)..]) : (rest, null);
        worker ??= State is not null && State.Tasks.TryGetValue(task, out var t) && t.WorkerId is { } w ? w : "w1";
        ReportTaskEvent Report(TaskEventKind kind) => new(RunId, task, kind, worker, null, null);
        return verb switch
        {
            "start" => Report(TaskEventKind.TASK_STARTED),
            "ok" => Report(TaskEventKind.TASK_SUCCEEDED),
            "fail" => Report(TaskEventKind.TASK_FAILED) with { Error = "boom" },
            "ack" => Report(TaskEventKind.TASK_CANCELLED),
            "hb" => Report(TaskEventKind.TASK_HEARTBEAT),
            "cancel" => new CancelRun(RunId, "user asked", "alice", Force: false),
            "cancel!" => new CancelRun(RunId, "user asked", "alice", Force: true),
            "finalise" => new FinaliseCancel(RunId, "admin"),
            "timeout" => new CancelTimeoutElapsed(RunId),
            "get" => new GetRun(RunId),
            _ => throw new ArgumentException($"unknown step '{step}'"),
        };
    }

    public void Accept(Decision d, string? what = null)
    {
        if (d.Reply is CommandRejected r)
            Assert.Fail($"{what ?? "command"} was rejected: {r.Kind} {r.Message}");
    }

    /// <summary>"a=QUEUED b=PENDING": the states the listed tasks must be in.</summary>
    public void AssertTasks(string expected)
    {
        foreach (var pair in expected.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var (id, state) = (pair.Split('=')[0], Enum.Parse<TaskState>(pair.Split('=')[1]));
            Assert.True(state == this[id], $"task {id}: expected {state}, was {this[id]}");
        }
    }

    public static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();
}

internal static class DecisionAssert
{
    public static CommandRejected Rejected(Decision d, RejectionKind kind)
    {
        Assert.Empty(d.Persist);
        Assert.Empty(d.Transient);
        var r = Assert.IsType<CommandRejected>(d.Reply);
        Assert.Equal(kind, r.Kind);
        return r;
    }

    public static void NoEvents(Decision d)
    {
        Assert.Empty(d.Persist);
        Assert.Empty(d.Transient);
    }
}
