using Deepline.Node;
using Deepline.Node.Configuration;

DeeplineConfig config;
WebApplication app;
try
{
    var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
        .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
    config = ConfigLoader.Load(args.FirstOrDefault(), environment);
    app = DeeplineNode.Build(config);
}
catch (ConfigException ex)
{
    Console.Error.WriteLine($"deepline: configuration error, not starting:{Environment.NewLine}{ex.Message}");
    return 2;
}

app.Logger.LogInformation("Deepline node starting on http://{Host}:{Port}{NewLine}{Config}",
    config.Http.Host, config.Http.Port, Environment.NewLine, ConfigLoader.Describe(config));
await app.RunAsync();
return 0;
