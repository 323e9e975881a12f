using System.Collections.Immutable;
using Xunit;

namespace Deepline.Domain.Tests;

public class DagValidatorTests
{
    private static SubmissionError? Validate(RunSpec spec, int maxDepth = 50) => DagValidator.Validate(spec, Dag.Policy(maxDepth));

    // ---- cycles -------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("a<a", "a")] // self-dependency
    [InlineData("a b<a,b", "b")] // self-dependency behind a valid root
    [InlineData("a<b b<a", "a b")]
    [InlineData("a b<a,c c<b", "b c")] // 2-cycle hanging off a valid root
    [InlineData("x<c1 c1<c2 c2<c1", "c1 c2")] // the first blocked task only leads into the cycle: it is not part of it
    [InlineData("a b<a c<b,e d<c e<d f<a", "c d e")]
    [InlineData("p0 p1<p0 p2<p1 c0<p2,c4 c1<c0 c2<c1 c3<c2 c4<c3 z<c4 y<z,p0", "c0 c1 c2 c3 c4")] // 5-cycle in a larger DAG
    [InlineData("z<c4 c4<c3 c3<c2 c2<c1 c1<c0 c0<c4", "c0 c1 c2 c3 c4")] // same cycle listed in reverse
    public void A_dependency_cycle_is_rejected_with_its_path(string dag, string members)
    {
        var spec = Dag.Spec(dag);

        var error = Validate(spec);

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Equal("tasks", error.Field);
        Dag.AssertRealCycle(spec, error.Cycle);
        var cycle = error.Cycle!.Value;
        Assert.Equal(members.Split(' ').Order(), cycle.Skip(1).Order());
        Assert.Contains(string.Join(" -> ", cycle), error.Message);
    }

    [Fact]
    public void A_self_dependency_is_reported_as_the_cycle_a_a()
    {
        var error = Validate(Dag.Spec("a<a"));

        Assert.NotNull(error);
        Assert.Equal(new[] { "a", "a" }, error.Cycle!.Value.ToArray());
    }

    [Fact]
    public void With_two_disjoint_cycles_one_real_cycle_is_reported()
    {
        var spec = Dag.Spec("r a<r,b b<a x<y y<z z<x");

        var error = Validate(spec);

        Assert.NotNull(error);
        Dag.AssertRealCycle(spec, error.Cycle);
    }

    [Fact]
    public void A_cycle_through_ten_thousand_tasks_is_reported_whole()
    {
        const int n = 10_000;
        var tasks = Dag.Chain(n).ToList();
        tasks[0] = Dag.Task("t0", $"t{n - 1}");
        var spec = Dag.Spec(tasks);

        var error = Validate(spec, maxDepth: n);

        Assert.NotNull(error);
        Dag.AssertRealCycle(spec, error.Cycle);
        Assert.Equal(n + 1, error.Cycle!.Value.Length);
    }

    // ---- accepted shapes ----------------------------------------------------------------------------------

    [Theory]
    [InlineData("a")]
    [InlineData("a b c")]
    [InlineData(Dag.Diamond)]
    [InlineData("d<b,c b<a c<a a")] // dependencies listed after their dependents
    [InlineData("a b<a,a")] // the same dependency twice
    [InlineData("a b c<a,b d<a,b e<c,d")]
    public void A_valid_dag_is_accepted(string dag) => Assert.Null(Validate(Dag.Spec(dag)));

    // ---- bad shapes and bad fields ------------------------------------------------------------------------

    [Theory]
    [InlineData("a b<a,ghost", RejectionKind.Invalid, "tasks[1].depends_on", "'b'", "'ghost'")]
    [InlineData("a<ghost", RejectionKind.Invalid, "tasks[0].depends_on", "'a'", "'ghost'")]
    [InlineData("a b<a a", RejectionKind.Invalid, "tasks[2].task_id", "duplicate", "'a'")]
    [InlineData("a<a a", RejectionKind.Invalid, "tasks[1].task_id", "duplicate", "'a'")]
    [InlineData("", RejectionKind.BadRequest, "tasks", "at least one task")]
    public void A_malformed_dag_is_rejected_naming_the_field(string dag, RejectionKind kind, string field, params string[] fragments)
    {
        var error = Validate(Dag.Spec(dag));

        Assert.NotNull(error);
        Assert.Equal(kind, error.Kind);
        Assert.Equal(field, error.Field);
        Assert.Null(error.Cycle);
        foreach (var f in fragments) Assert.Contains(f, error.Message);
    }

    [Fact]
    public void A_default_task_list_is_a_bad_request()
    {
        var error = Validate(new RunSpec("run-1", "wf", "c", default));

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.BadRequest, error.Kind);
        Assert.Equal("tasks", error.Field);
    }

    public static TheoryData<string?> BadIds => new()
    {
        null, "", " ", "has space", "a/b", "a\\b", "naïve", "semi;colon", "q?x", "tab\t", "nul\0", "emoji😀",
        new string('x', Identifiers.MaxLength + 1),
    };

    public static TheoryData<string> GoodIds => new()
    {
        "a", "A-Za-z0-9._:-", "run:2025-03-01.x_y", new string('x', Identifiers.MaxLength),
    };

    [Theory]
    [MemberData(nameof(BadIds))]
    public void An_invalid_run_id_is_rejected(string? runId)
    {
        var error = Validate(Dag.Spec("a", runId!));

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Equal("run_id", error.Field);
    }

    [Theory]
    [MemberData(nameof(BadIds))]
    public void An_invalid_task_id_is_rejected(string? taskId)
    {
        var error = Validate(Dag.Spec([Dag.Task("ok"), Dag.Task(taskId!, "ok")]));

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Equal("tasks[1].task_id", error.Field);
    }

    [Theory]
    [MemberData(nameof(GoodIds))]
    public void Ids_of_the_allowed_alphabet_and_length_are_accepted(string id)
    {
        Assert.Null(Validate(Dag.Spec([Dag.Task("root"), Dag.Task(id, "root")], runId: id)));
    }

    [Theory]
    [InlineData("", "default", "tasks[0].type")]
    [InlineData("   ", "default", "tasks[0].type")]
    [InlineData("noop", "", "tasks[0].pool")]
    [InlineData("noop", "bad pool", "tasks[0].pool")]
    public void A_task_without_a_type_or_with_a_bad_pool_is_rejected(string type, string pool, string field)
    {
        var error = Validate(Dag.Spec([new TaskSpec("a", type, pool, null, [])]));

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Equal(field, error.Field);
    }

    // ---- depth --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(51, 50, true)] // depth 50: at the limit
    [InlineData(52, 50, false)] // depth 51
    [InlineData(1, 0, true)]
    [InlineData(2, 0, false)]
    [InlineData(2, 1, true)]
    [InlineData(10, 8, false)]
    public void Depth_is_the_number_of_edges_on_the_longest_chain(int chainLength, int limit, bool accepted)
    {
        var error = Validate(Dag.Spec(Dag.Chain(chainLength)), limit);

        if (accepted)
        {
            Assert.Null(error);
            return;
        }
        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Equal("tasks", error.Field);
        Assert.Null(error.Cycle);
        Assert.Contains($"depth {chainLength - 1}", error.Message);
        Assert.Contains($"max_dependency_depth {limit}", error.Message);
        Assert.Contains("'t0'", error.Message);
        Assert.Contains($"'t{chainLength - 1}'", error.Message);
    }

    [Theory]
    [InlineData(50, false)]
    [InlineData(51, true)]
    public void Depth_follows_the_longest_chain_not_the_shortest(int limit, bool accepted)
    {
        // z depends on t0 directly (1 edge) and on t50 (51 edges); z is listed first.
        var spec = Dag.Spec([Dag.Task("z", "t0", "t50"), .. Dag.Chain(51)]);

        var error = Validate(spec, limit);

        Assert.Equal(accepted, error is null);
        if (!accepted) Assert.Contains("depth 51", error!.Message);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void A_wide_dag_is_only_as_deep_as_its_longest_chain(int limit, bool accepted)
    {
        var middle = Enumerable.Range(0, 500).Select(i => $"m{i}").ToArray();
        var spec = Dag.Spec([Dag.Task("root"), .. middle.Select(m => Dag.Task(m, "root")), Dag.Task("sink", middle)]);

        Assert.Equal(accepted, Validate(spec, limit) is null);
    }

    [Fact]
    public void A_ten_thousand_task_chain_is_accepted_when_the_limit_allows_it()
    {
        Assert.Null(Validate(Dag.Spec(Dag.Chain(10_000)), maxDepth: 10_000));
        Assert.Null(Validate(Dag.Spec(Dag.Chain(10_000).Reverse()), maxDepth: 10_000));
    }

    [Fact]
    public void A_ten_thousand_task_chain_is_rejected_with_the_default_limit()
    {
        var error = DagValidator.Validate(Dag.Spec(Dag.Chain(10_000)), SubmissionPolicy.Default);

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Contains("depth 9999", error.Message);
        Assert.Contains("max_dependency_depth 50", error.Message);
    }

    // ---- task types and pools -----------------------------------------------------------------------------

    private static readonly SubmissionPolicy Pools = SubmissionPolicy.Default with
    {
        InClusterPools = ImmutableDictionary<string, ImmutableHashSet<string>>.Empty
            .Add("default", ["http", "shell"])
            .Add("local", ["python"]),
    };

    [Theory]
    [InlineData("default", "http", true)]
    [InlineData("default", "shell", true)]
    [InlineData("default", "python", false)]
    [InlineData("default", "HTTP", false)]
    [InlineData("local", "python", true)]
    [InlineData("local", "http", false)]
    [InlineData("gpu-external", "anything", true)] // no in-cluster handler: external workers decide
    [InlineData("partner.pool:1", "whatever-type", true)]
    public void Task_types_are_checked_only_for_in_cluster_pools(string pool, string type, bool accepted)
    {
        var spec = Dag.Spec([new TaskSpec("a", type, pool, null, [])]);

        var error = DagValidator.Validate(spec, Pools);

        if (accepted)
        {
            Assert.Null(error);
            return;
        }
        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Equal("tasks[0].type", error.Field);
        Assert.Contains($"'{type}'", error.Message);
        Assert.Contains($"'{pool}'", error.Message);
    }

    // ---- bad input never throws ---------------------------------------------------------------------------

    [Fact]
    public void A_null_dependency_is_rejected_not_thrown()
    {
        var spec = Dag.Spec([Dag.Task("a"), new TaskSpec("b", "noop", "default", null, ["a", null!])]);

        var error = Validate(spec);

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Equal("tasks[1].depends_on", error.Field);
    }

    [Fact]
    public void A_null_task_is_rejected_not_thrown()
    {
        var spec = new RunSpec("run-1", "wf", "c", [Dag.Task("a"), null!]);

        var error = Validate(spec);

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.StartsWith("tasks[1]", error.Field);
    }

    // ---- through the decider ------------------------------------------------------------------------------

    [Theory]
    [InlineData("a<b b<a")]
    [InlineData("a b<ghost")]
    [InlineData("a a")]
    [InlineData("")]
    public void A_rejected_submission_is_answered_with_the_error_and_journals_nothing(string dag)
    {
        var spec = Dag.Spec(dag);
        var expected = Validate(spec)!;
        var h = new RunHarness();

        var r = DecisionAssert.Rejected(h.Send(new SubmitRun(spec)), expected.Kind);

        Assert.Equal(expected.Field, r.Field);
        Assert.Equal(expected.Message, r.Message);
        Assert.Equal(expected.Cycle.HasValue, r.Cycle.HasValue);
        if (r.Cycle is { } c) Assert.Equal(expected.Cycle!.Value.ToArray(), c.ToArray());
        Assert.Null(h.State);
    }
}
