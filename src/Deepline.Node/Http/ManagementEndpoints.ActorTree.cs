using Akka.Actor;
using Akka.Cluster;
using Deepline.Node.Security;

namespace Deepline.Node.Http;

// This node's actor hierarchy, bounded by depth and a node budget.
public static partial class ManagementEndpoints
{
    public const int DefaultHierarchyDepth = 3;
    public const int MaxHierarchyDepth = 10;

    /// <summary>A node with tens of thousands of live runs must not turn one request into a megabyte of JSON.</summary>
    public const int MaxHierarchyNodes = 2000;

    private static void MapActorTreeEndpoints(IEndpointRouteBuilder app)
    {
        app.MapGet("/actors/hierarchy", IResult (ActorSystem system, int? depth) =>
        {
            var d = depth ?? DefaultHierarchyDepth;
            if (d is < 1 or > MaxHierarchyDepth)
                return Problems.BadRequest($"depth must be from 1 to {MaxHierarchyDepth}, got {d}", "depth");
            var ext = (ExtendedActorSystem)system;
            var budget = new Budget(MaxHierarchyNodes);
            ActorNode[] guardians = [.. new[] { ext.Guardian, ext.SystemGuardian }.Select(g => Walk(g, 1, d, budget)).OfType<ActorNode>()];
            var root = new ActorNode("/", "/", guardians, guardians.Length < 2, 2);
            return TypedResults.Ok(new HierarchyResponse(Cluster.Get(system).SelfAddress.ToString(), d, budget.Used, budget.Exhausted, root));
        }).RequireAuthorization(Policies.Operate)
            .Documented("actors", "This node's actor tree, bounded by depth and a node budget", 400).Produces<HierarchyResponse>(200);
    }

    /// <summary>Counts the actors listed so far; once <c>max</c> is reached the walk stops and says so.</summary>
    private sealed class Budget(int max)
    {
        public int Used { get; private set; }

        public bool Exhausted { get; private set; }

        public bool TryTake()
        {
            if (Used >= max)
            {
                Exhausted = true;
                return false;
            }
            Used++;
            return true;
        }
    }

    /// <summary>
    /// Children come from the actor cell itself (a consistent snapshot of its child container) rather than from
    /// Identify round trips: no messages to thousands of entities, no waiting on busy mailboxes.
    /// </summary>
    private static ActorNode? Walk(IActorRef actor, int level, int maxDepth, Budget budget)
    {
        if (!budget.TryTake())
            return null;
        var path = actor.Path.ToStringWithoutAddress();
        if (actor is not ActorRefWithCell withCell)
            return new ActorNode(actor.Path.Name, path, [], false);
        var children = withCell.Children.OrderBy(c => c.Path.Name, StringComparer.Ordinal).ToList();
        var walked = new List<ActorNode>();
        if (level < maxDepth)
        {
            foreach (var child in children)
            {
                if (Walk(child, level + 1, maxDepth, budget) is not { } node) break;
                walked.Add(node);
            }
        }
        return new ActorNode(actor.Path.Name, path, walked, walked.Count < children.Count, children.Count);
    }
}
