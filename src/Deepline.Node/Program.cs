using Deepline.Node;
using Deepline.Node.Configuration;

DeeplineConfig config;
WebApplication app;
try
{
    var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
        .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
    config = ConfigLoader.Load(args.FirstOrDefault(), environment);
    PortCheck.EnsureFree(config.Http.Host, config.Http.Port, "HTTP", "orchestrator.http.port", "DEEPLINE_HTTP_PORT");
    PortCheck.EnsureFree(config.Remoting.Host, config.Remoting.Port, "Cluster (Akka.Remote)", "orchestrator.remoting.port", "DEEPLINE_REMOTING_PORT");
    app = DeeplineNode.Build(config, onForeignStore: () => Environment.ExitCode = Deepline.Actors.Hosting.StoreGuard.ExitCode);
}
catch (ConfigException ex)
{
    Console.Error.WriteLine($"deepline: configuration error, not starting:{Environment.NewLine}{ex.Message}");
    return 2;
}
catch (PortInUseException ex)
{
    Console.Error.WriteLine($"deepline: not starting: {ex.Message}");
    return PortInUseException.ExitCode;
}
catch (Deepline.Actors.Hosting.StoreUnavailableException ex)
{
    Console.Error.WriteLine($"deepline: store unavailable, not starting: {ex.Message}");
    return 3;
}
catch (Deepline.Actors.Hosting.StoreCheckException ex)
{
    // One line an operator can act on; a stack trace here would only hide it.
    Console.Error.WriteLine($"deepline: store check failed, not starting: {ex.Message}");
    return 3;
}

app.Logger.LogInformation("Deepline node starting on http://{Host}:{Port}{NewLine}{Config}",
    config.Http.Host, config.Http.Port, Environment.NewLine, ConfigLoader.Describe(config));
foreach (var notice in config.Notices)
    app.Logger.LogWarning("Config notice: {Notice}", notice);
try
{
    await app.RunAsync();
}
catch (IOException ex) when (ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
{
    // Taken between the check above and Kestrel's bind.
    Console.Error.WriteLine($"deepline: not starting: HTTP port {config.Http.Port} on {config.Http.Host} is in use by another process; " +
                            "free it or move this node with orchestrator.http.port (DEEPLINE_HTTP_PORT)");
    return PortInUseException.ExitCode;
}
catch (Microsoft.Extensions.Options.OptionsValidationException ex)
{
    // The options validators run again as the host starts (ValidateOnStart); the loader ran them first, so this is a
    // configuration built some other way: the same line and exit code as the loader's.
    Console.Error.WriteLine($"deepline: configuration error, not starting:{Environment.NewLine}{string.Join(Environment.NewLine, ex.Failures)}");
    return 2;
}
// A node that had to leave (its store is not the cluster's) set its own exit code.
return Environment.ExitCode;
