using System.Collections.Immutable;
using Akka.Persistence.Journal;
using Deepline.Domain;

namespace Deepline.Actors.Workflows;

/// <summary>
/// Tags the cancel record (<see cref="RunCancelRequested"/>) with <see cref="Cancels"/>, which the cancellation mirror
/// follows with an events-by-tag query. Other run events stay untagged: a tag costs a row in the tag table and makes
/// the journal insert its rows one by one to learn their ordering, and the run index reads all events instead.
/// </summary>
public sealed class RunEventTagger : IWriteEventAdapter
{
    public const string Cancels = "run-cancel";

    private static readonly IImmutableSet<string> CancelOnly = ImmutableHashSet.Create(Cancels);

    public string Manifest(object evt) => string.Empty;

    public object ToJournal(object evt) => evt is RunCancelRequested ? new Tagged(evt, CancelOnly) : evt;
}
