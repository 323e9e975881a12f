using FsCheck.Xunit;
using Xunit;

namespace Deepline.Domain.Tests;

[Properties(Arbitrary = [typeof(Generators)], MaxTest = 200)]
public class DagValidatorProperties
{
    [Property]
    public void A_dag_generated_acyclic_is_accepted_in_any_listing_order(RandomDag dag)
    {
        Assert.Null(DagValidator.Validate(dag.ToSpec(), Dag.Policy(dag.Count)));
    }

    [Property]
    public void The_depth_limit_is_exactly_the_longest_chain(RandomDag dag)
    {
        var longest = dag.LongestChain();

        Assert.Null(DagValidator.Validate(dag.ToSpec(), Dag.Policy(longest)));
        if (longest == 0) return;
        var error = DagValidator.Validate(dag.ToSpec(), Dag.Policy(longest - 1));
        Assert.NotNull(error);
        Assert.Contains($"depth {longest} ", error.Message);
    }

    [Property]
    public void A_back_edge_closing_a_cycle_is_rejected_with_a_real_cycle(CyclicDag dag)
    {
        var spec = dag.ToSpec();

        var error = DagValidator.Validate(spec, Dag.Policy(1_000));

        Assert.NotNull(error);
        Assert.Equal(RejectionKind.Invalid, error.Kind);
        Assert.Equal("tasks", error.Field);
        Dag.AssertRealCycle(spec, error.Cycle);
    }
}
