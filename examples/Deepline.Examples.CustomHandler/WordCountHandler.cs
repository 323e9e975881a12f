using System.Text.Json;
using Deepline.Actors.Workers;

namespace Deepline.Examples.CustomHandler;

/// <summary>
/// Task type <c>word-count</c>: <c>{"text": "..."}</c> in, <c>{"words": N}</c> out. What every in-cluster handler does:
/// read its params, check its cancellation token between steps of real work, return a JSON result, throw to fail (the
/// exception's message is the task's error, its type name what <c>non_retryable_errors</c> matches).
/// </summary>
public sealed class WordCountHandler : ITaskHandler
{
    public string Type => "word-count";

    public async Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        if (context.Params is not { ValueKind: JsonValueKind.Object } p || !p.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            throw new ArgumentException("word-count needs params {\"text\": \"...\"}");
        var words = 0;
        foreach (var line in text.GetString()!.Split('\n'))
        {
            // A long input is worked through in steps; a cancelled run stops it between two of them.
            cancellationToken.ThrowIfCancellationRequested();
            words += line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            await Task.Yield();
        }
        return JsonSerializer.SerializeToElement(new { words });
    }
}
