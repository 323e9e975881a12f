namespace Deepline.Actors.Workflows;

/// <summary>
/// Published on the node's event stream by a run whose journal it could not read, so /health can name the run
/// without asking every entity.
/// </summary>
public sealed record RunHistoryUnreadable(string RunId, long SequenceNr, string Error, DateTimeOffset At);
