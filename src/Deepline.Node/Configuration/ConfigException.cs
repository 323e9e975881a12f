namespace Deepline.Node.Configuration;

/// <summary>
/// The configuration (config.yaml and/or DEEPLINE_* environment variables) is unusable.
/// <see cref="Exception.Message"/> holds every problem found, one per line, each naming the key at
/// fault and where its value came from; <see cref="Errors"/> holds the same lines as a list.
/// Secret values (the alert webhook URL) never appear in it.
/// </summary>
public sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<string> errors)
        : base(string.Join("\n", errors ?? throw new ArgumentNullException(nameof(errors))))
    {
        Errors = errors.ToArray();
    }

    public ConfigException(string message)
        : base(message)
    {
        Errors = [message];
    }

    /// <summary>Every problem found, one entry per problem.</summary>
    public IReadOnlyList<string> Errors { get; }
}
