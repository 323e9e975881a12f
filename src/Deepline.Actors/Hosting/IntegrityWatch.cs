using System.Collections.Immutable;
using Akka.Actor;
using Deepline.Actors.Workflows;

namespace Deepline.Actors.Hosting;

/// <summary>The runs this node found unreadable, newest last; bounded, since a damaged store may hold many.</summary>
public sealed record IntegrityReport(long UnreadableRuns, ImmutableList<RunHistoryUnreadable> Recent)
{
    public const int Kept = 20;

    public static IntegrityReport Empty { get; } = new(0, []);

    public IntegrityReport With(RunHistoryUnreadable r)
    {
        var known = Recent.FindIndex(x => x.RunId == r.RunId);
        if (known >= 0) return this with { Recent = Recent.SetItem(known, r) };
        return new IntegrityReport(UnreadableRuns + 1, (Recent.Count >= Kept ? Recent.RemoveAt(0) : Recent).Add(r));
    }
}

public sealed record GetIntegrity
{
    public static GetIntegrity Instance { get; } = new();
}

/// <summary>Collects <see cref="RunHistoryUnreadable"/> from this node's runs for /health.</summary>
public sealed class IntegrityWatch : ReceiveActor
{
    private IntegrityReport _report = IntegrityReport.Empty;

    public IntegrityWatch()
    {
        Receive<RunHistoryUnreadable>(r => _report = _report.With(r));
        Receive<GetIntegrity>(_ => Sender.Tell(_report));
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new IntegrityWatch());

    protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(RunHistoryUnreadable));

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);
}
