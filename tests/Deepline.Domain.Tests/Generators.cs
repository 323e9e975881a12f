using FsCheck;
using FsCheck.Fluent;

namespace Deepline.Domain.Tests;

/// <summary>
/// A random DAG generated acyclic: task i depends only on tasks before it (duplicates allowed), and is listed in
/// the spec at position <see cref="Order"/>[i] so that dependencies may come after their dependents.
/// </summary>
public sealed record RandomDag(int[][] Deps, int[] Order)
{
    public int Count => Deps.Length;

    public static string Id(int i) => $"t{i}";

    public RunSpec ToSpec((int From, int To)? extraEdge = null)
    {
        var tasks = new TaskSpec[Count];
        for (var i = 0; i < Count; i++)
        {
            var deps = Deps[i].Select(Id).ToList();
            if (extraEdge is { } e && e.From == i) deps.Add(Id(e.To));
            tasks[Order[i]] = Dag.Task(Id(i), [.. deps]);
        }
        return Dag.Spec(tasks);
    }

    /// <summary>Edges on the longest chain, computed independently of the validator.</summary>
    public int LongestChain()
    {
        var depth = new int[Count];
        for (var i = 0; i < Count; i++)
            depth[i] = Deps[i].Length == 0 ? 0 : Deps[i].Max(j => depth[j] + 1);
        return depth.Max();
    }

    /// <summary>Tasks that <paramref name="task"/> reaches through depends_on, and itself.</summary>
    public SortedSet<int> UpstreamOf(int task)
    {
        var seen = new SortedSet<int> { task };
        var stack = new Stack<int>([task]);
        while (stack.Count > 0)
            foreach (var d in Deps[stack.Pop()])
                if (seen.Add(d)) stack.Push(d);
        return seen;
    }

    public override string ToString() =>
        string.Join(" ", Enumerable.Range(0, Count).OrderBy(i => Order[i])
            .Select(i => Deps[i].Length == 0 ? Id(i) : $"{Id(i)}<{string.Join(",", Deps[i].Select(Id))}"));
}

/// <summary>A random DAG with a back edge: <see cref="From"/> depends on <see cref="To"/>, which already reaches <see cref="From"/>.</summary>
public sealed record CyclicDag(RandomDag Dag, int From, int To)
{
    public RunSpec ToSpec() => Dag.ToSpec((From, To));

    public override string ToString() => $"{Dag} + {RandomDag.Id(From)}<{RandomDag.Id(To)}";
}

/// <summary>One step a client, a worker or a timer might take; interpreted against the run as it stands.</summary>
public sealed record Step(int Kind, int Pick, int Worker, int Seconds)
{
    public override string ToString() => $"({Kind},{Pick},{Worker},{Seconds})";
}

public sealed record Scenario(RandomDag Dag, Step[] Steps)
{
    public override string ToString() => $"dag: {Dag}; steps: {string.Join(" ", Steps.AsEnumerable())}";
}

public static class Generators
{
    private static Gen<int[]> Ints(int count) => Gen.ArrayOf(Gen.Choose(0, 1_000_000), count);

    private static Gen<RandomDag> DagOf(int maxTasks) =>
        from n in Gen.Choose(1, maxTasks)
        from raw in Ints(n * 4)
        from order in Gen.Shuffle(Enumerable.Range(0, n))
        select new RandomDag(
            [.. Enumerable.Range(0, n).Select(i => i == 0
                ? Array.Empty<int>()
                : [.. Enumerable.Range(0, raw[4 * i] % (Math.Min(i, 3) + 1)).Select(m => raw[4 * i + 1 + m] % i)])],
            order);

    public static Arbitrary<RandomDag> Dags() => Arb.From(DagOf(30), Shrink);

    public static Arbitrary<CyclicDag> CyclicDags() => Arb.From(
        from dag in DagOf(30)
        from to in Gen.Choose(0, dag.Count - 1)
        from pick in Gen.Choose(0, 1_000_000)
        let upstream = dag.UpstreamOf(to).ToArray()
        select new CyclicDag(dag, upstream[pick % upstream.Length], to));

    public static Arbitrary<Scenario> Scenarios() => Arb.From(
        from dag in DagOf(10)
        from count in Gen.Choose(0, 80)
        from steps in Gen.ArrayOf(
            from kind in Gen.Choose(0, 99)
            from pick in Gen.Choose(0, 1_000_000)
            from worker in Gen.Choose(0, 5)
            from seconds in Gen.Choose(0, 120)
            select new Step(kind, pick, worker, seconds), count)
        select new Scenario(dag, steps),
        ShrinkScenario);

    /// <summary>Drop trailing tasks (and edges into them): the result is still acyclic.</summary>
    private static IEnumerable<RandomDag> Shrink(RandomDag dag)
    {
        for (var n = 1; n < dag.Count; n++)
        {
            var order = dag.Order.Take(n).Select((o, i) => (o, i)).OrderBy(x => x.o).Select(x => x.i).ToArray();
            var position = new int[n];
            for (var p = 0; p < n; p++) position[order[p]] = p;
            yield return new RandomDag(dag.Deps.Take(n).ToArray(), position);
        }
    }

    private static IEnumerable<Scenario> ShrinkScenario(Scenario s)
    {
        for (var len = 0; len < s.Steps.Length; len = len == 0 ? 1 : len * 2)
            yield return s with { Steps = s.Steps[..len] };
        for (var i = 0; i < s.Steps.Length; i++)
            yield return s with { Steps = [.. s.Steps[..i], .. s.Steps[(i + 1)..]] };
        foreach (var d in Shrink(s.Dag)) yield return s with { Dag = d };
    }
}
