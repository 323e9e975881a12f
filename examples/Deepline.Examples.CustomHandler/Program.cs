using Deepline.Examples.CustomHandler;
using Deepline.Node;
using Deepline.Node.Configuration;

// The node's own start-up with one more handler: configuration (config.yaml, DEEPLINE_* variables) works as for the
// node, and tasks of type "word-count" run in this node's in-cluster pools.
var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
    .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
DeeplineConfig config;
try
{
    config = ConfigLoader.Load(args.FirstOrDefault(), environment);
}
catch (ConfigException ex)
{
    Console.Error.WriteLine($"configuration error, not starting:{Environment.NewLine}{ex.Message}");
    return 2;
}
var app = DeeplineNode.Build(config, [new WordCountHandler()]);
await app.RunAsync();
return 0;
