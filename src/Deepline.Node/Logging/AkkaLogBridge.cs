using System.Collections;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;
using Akka.Hosting.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MelLogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace Deepline.Node.Logging;

/// <summary>
/// Akka's log events into Microsoft.Extensions.Logging as structured entries: the message template's fields
/// (<c>run_id</c>, <c>reason</c>, <c>deadlock_reason</c>, ...) become the entry's state, so the JSON console and the
/// log files carry them as properties, and the message is the formatted text alone. Akka.Hosting's logger handed on
/// the whole event, whose text starts with Akka's own header (level, time, thread, path): every line had two headers,
/// and in JSON the fields were only inside the text.
/// </summary>
public sealed class AkkaLogBridge : ActorBase, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    private readonly ILogger _logger;

    public AkkaLogBridge()
    {
        var setup = Context.System.Settings.Setup.Get<LoggerFactorySetup>();
        // The category every Akka line had before, which filters and the worker.log split rely on.
        _logger = (setup.HasValue ? setup.Value.LoggerFactory : NullLoggerFactory.Instance).CreateLogger<ActorSystem>();
    }

    protected override bool Receive(object message)
    {
        switch (message)
        {
            case InitializeLogger:
                Sender.Tell(new LoggerInitialized());
                return true;
            case LogEvent e:
                var level = e.LogLevel() switch
                {
                    Akka.Event.LogLevel.DebugLevel => MelLogLevel.Debug,
                    Akka.Event.LogLevel.InfoLevel => MelLogLevel.Information,
                    Akka.Event.LogLevel.WarningLevel => MelLogLevel.Warning,
                    _ => MelLogLevel.Error,
                };
                if (_logger.IsEnabled(level)) _logger.Log(level, default, AkkaLogState.Of(e), e.Cause, static (s, _) => s.Message);
                return true;
            default:
                return false;
        }
    }
}

/// <summary>An Akka log event as Microsoft.Extensions.Logging's structured state: template fields, source, template.</summary>
public sealed partial class AkkaLogState : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly KeyValuePair<string, object?>[] _fields;

    private AkkaLogState(string message, KeyValuePair<string, object?>[] fields) => (Message, _fields) = (message, fields);

    /// <summary>The formatted text, without Akka's header.</summary>
    public string Message { get; }

    public static AkkaLogState Of(LogEvent e)
    {
        var fields = new List<KeyValuePair<string, object?>>();
        string template;
        if (e.Message is LogMessage m)
        {
            template = m.Format;
            using var values = m.Parameters().GetEnumerator();
            foreach (Match placeholder in Placeholder().Matches(template))
            {
                if (!values.MoveNext()) break;
                var name = placeholder.Groups[1].Value;
                if (fields.All(f => f.Key != name)) fields.Add(new(name, values.Current));
            }
        }
        else
        {
            // A plain object logged: its text is the message, and braces in it are not placeholders.
            template = (e.Message?.ToString() ?? "").Replace("{", "{{").Replace("}", "}}");
        }
        fields.Add(new("ActorPath", e.LogSource));
        fields.Add(new("{OriginalFormat}", template));
        return new AkkaLogState(e.Message?.ToString() ?? "", [.. fields]);
    }

    // {name}, {name:format}, {name,alignment}; not the escaped {{.
    [GeneratedRegex(@"(?<!\{)\{([A-Za-z0-9_@$]+)(?:[,:][^{}]*)?\}")]
    private static partial Regex Placeholder();

    public KeyValuePair<string, object?> this[int index] => _fields[index];

    public int Count => _fields.Length;

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)_fields).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => Message;
}
