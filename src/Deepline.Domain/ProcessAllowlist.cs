using System.Collections.Immutable;
using System.Text.Json;

namespace Deepline.Domain;

/// <summary>
/// The commands a <c>process</c> task may run on this node (<c>orchestrator.workers.process.allowed_commands</c>):
/// names or absolute paths exactly as a task writes them in <c>params.command</c>, or <c>*</c> for any command (an
/// explicit choice). Empty, the default: the process handler runs nothing, because anyone who may submit a run would
/// otherwise run commands as the node's user.
/// </summary>
public sealed record ProcessAllowlist(ImmutableHashSet<string> Commands)
{
    public const string TaskType = "process";
    public const string Setting = "orchestrator.workers.process.allowed_commands (DEEPLINE_WORKERS_PROCESS_ALLOWED_COMMANDS)";

    /// <summary>Prefix of the node's own variables: a task may neither set nor see them.</summary>
    public const string ReservedEnvPrefix = "DEEPLINE_";

    public static ProcessAllowlist Disabled { get; } = new([]);

    public bool AllowsAny => Commands.Contains("*");

    public bool Allows(string command) => AllowsAny || Commands.Contains(command);

    /// <summary>Why a process task's params are refused by this node (null: accepted), as (field suffix, message).</summary>
    public (string Field, string Message)? Refusal(JsonElement? parameters)
    {
        if (parameters is not { ValueKind: JsonValueKind.Object } p) return null; // the handler reports malformed params itself
        if (p.TryGetProperty("command", out var c) && c.ValueKind == JsonValueKind.String && c.GetString() is { } command && !Allows(command))
            return ("params.command", Commands.IsEmpty
                ? $"process tasks are off on this node: {Setting} names no command"
                : $"command '{command}' is not one of the commands this node allows ({Setting})");
        if (p.TryGetProperty("env", out var env) && env.ValueKind == JsonValueKind.Object)
            foreach (var variable in env.EnumerateObject())
                if (variable.Name.StartsWith(ReservedEnvPrefix, StringComparison.OrdinalIgnoreCase))
                    return ($"params.env.{variable.Name}", $"variables named {ReservedEnvPrefix}* belong to the node: a task may not set them");
        return null;
    }
}
