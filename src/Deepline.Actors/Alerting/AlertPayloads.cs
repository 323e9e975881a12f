using System.Text.Json.Nodes;
using Deepline.Domain;

namespace Deepline.Actors.Alerting;

public enum AlertFormat { auto, slack, pagerduty, generic }

/// <summary>An alert about one incident, as the webhook will receive it.</summary>
public sealed record AlertRequest(Detection Detection, DateTimeOffset DetectedAt, bool AutoCancel) : IDeeplineMessage;

/// <summary>The receiver's incident for a run is over (PagerDuty: a resolve event with the alert's dedup key).</summary>
public sealed record ResolveRequest(string RunId) : IDeeplineMessage;

/// <summary>The three body shapes: Slack incoming webhook (the seed's), PagerDuty Events API v2, generic JSON.</summary>
public static class AlertPayloads
{
    public static AlertFormat Resolve(AlertFormat configured, Uri webhook) => configured != AlertFormat.auto
        ? configured
        : webhook.Host switch
        {
            var h when h.EndsWith("slack.com", StringComparison.OrdinalIgnoreCase) => AlertFormat.slack,
            var h when h.EndsWith("pagerduty.com", StringComparison.OrdinalIgnoreCase) => AlertFormat.pagerduty,
            _ => AlertFormat.generic,
        };

    public static JsonObject Build(AlertFormat format, AlertRequest a, string? routingKey) => format switch
    {
        AlertFormat.slack => Slack(a),
        AlertFormat.pagerduty => PagerDuty(a, routingKey),
        _ => Generic(a),
    };

    public static JsonObject Slack(AlertRequest a)
    {
        var d = a.Detection;
        JsonObject Field(string title, string value) => new() { ["title"] = title, ["value"] = value, ["short"] = true };
        return new JsonObject
        {
            ["text"] = $"\U0001F534 Deadlock Alert: Workflow {d.RunId}",
            ["attachments"] = new JsonArray(new JsonObject
            {
                ["color"] = "danger",
                ["fields"] = new JsonArray(
                    Field("Workflow ID", d.RunId),
                    Field("Workflow Name", d.WorkflowName),
                    Field("Stuck Tasks", d.StuckTasks.Length.ToString()),
                    Field("Last Update", Ago(a.DetectedAt - d.LastUpdate)),
                    Field("Auto-Cancel", a.AutoCancel ? "true" : "false"),
                    Field("Deadlock Reason", d.Reason.ToString())),
                ["text"] = $"{d.Reason}: {d.Explanation}",
            }),
        };
    }

    public static JsonObject PagerDuty(AlertRequest a, string? routingKey)
    {
        var d = a.Detection;
        return new JsonObject
        {
            ["routing_key"] = routingKey ?? "",
            ["event_action"] = "trigger",
            ["dedup_key"] = d.RunId,
            ["payload"] = new JsonObject
            {
                ["summary"] = $"Deadlock detected for workflow {d.RunId} ({d.Reason}) with {d.StuckTasks.Length} stuck tasks",
                ["source"] = "deepline",
                ["severity"] = "error",
                ["timestamp"] = a.DetectedAt.UtcDateTime.ToString("O"),
                ["custom_details"] = Details(a),
            },
        };
    }

    /// <summary>Ends the PagerDuty incident the trigger opened: the same dedup key, so PagerDuty finds it.</summary>
    public static JsonObject PagerDutyResolve(string runId, string? routingKey) => new()
    {
        ["routing_key"] = routingKey ?? "",
        ["event_action"] = "resolve",
        ["dedup_key"] = runId,
    };

    public static JsonObject Generic(AlertRequest a) => new()
    {
        ["event"] = "deadlock_detected",
        ["detected_at"] = a.DetectedAt.UtcDateTime.ToString("O"),
        ["details"] = Details(a),
    };

    private static JsonObject Details(AlertRequest a) => new()
    {
        ["run_id"] = a.Detection.RunId,
        ["workflow_name"] = a.Detection.WorkflowName,
        ["reason"] = a.Detection.Reason.ToString(),
        // The same detector under the name the cancel record and /runs/cancelled use, so one filter fits all three.
        ["deadlock_reason"] = a.Detection.Reason.ToString(),
        ["explanation"] = a.Detection.Explanation,
        ["stuck_tasks"] = new JsonArray([.. a.Detection.StuckTasks.Take(50).Select(t => (JsonNode)t!)]),
        ["stuck_task_count"] = a.Detection.StuckTasks.Length,
        ["stuck_since"] = a.Detection.StuckSince.UtcDateTime.ToString("O"),
        ["last_update"] = a.Detection.LastUpdate.UtcDateTime.ToString("O"),
        ["auto_cancel"] = a.AutoCancel,
    };

    public static string Ago(TimeSpan span) => span.TotalSeconds switch
    {
        < 60 => $"{Math.Max(0, (int)span.TotalSeconds)} seconds ago",
        < 3600 => $"{(int)span.TotalMinutes} minutes ago",
        < 86400 => $"{(int)span.TotalHours} hours ago",
        _ => $"{(int)span.TotalDays} days ago",
    };

    /// <summary>For logs: scheme and host only, since the path and query of a webhook carry its token.</summary>
    public static string Redact(Uri webhook) => $"{webhook.Scheme}://{webhook.Host}/…";
}
