using Deepline.Node;
using Deepline.Node.Configuration;

DeeplineConfig config;
try
{
    var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
        .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
    config = ConfigLoader.Load(args.FirstOrDefault(), environment);
}
catch (ConfigException ex)
{
    Console.Error.WriteLine($"deepline: configuration error, not starting:{Environment.NewLine}{ex.Message}");
    return 2;
}

WebApplication app;
try
{
    app = DeeplineNode.Build(config);
}
catch (Deepline.Actors.Hosting.StoreCheckException ex)
{
    // One line an operator can act on; a stack trace here would only hide it.
    Console.Error.WriteLine($"deepline: store check failed, not starting: {ex.Message}");
    return 3;
}
app.Logger.LogInformation("Deepline node starting on http://{Host}:{Port}{NewLine}{Config}",
    config.Http.Host, config.Http.Port, Environment.NewLine, ConfigLoader.Describe(config));
await app.RunAsync();
return 0;
