using System.Collections.Immutable;
using Akka.Persistence.Journal;
using Deepline.Domain;

namespace Deepline.Actors.Workflows;

/// <summary>
/// Tags every run event so that read sides can follow the journal with events-by-tag queries: <see cref="AllRuns"/>
/// for the run index, <see cref="Cancels"/> for the cancel record alone (what Redis and pub/sub mirror).
/// </summary>
public sealed class RunEventTagger : IWriteEventAdapter
{
    public const string AllRuns = "run";
    public const string Cancels = "run-cancel";

    private static readonly IImmutableSet<string> RunOnly = ImmutableHashSet.Create(AllRuns);
    private static readonly IImmutableSet<string> RunAndCancel = ImmutableHashSet.Create(AllRuns, Cancels);

    public string Manifest(object evt) => string.Empty;

    public object ToJournal(object evt) => evt switch
    {
        RunCancelRequested => new Tagged(evt, RunAndCancel),
        IRunEvent => new Tagged(evt, RunOnly),
        _ => evt,
    };
}
