using Deepline.Cli;

var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
    .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // Let `runs watch` stop cleanly instead of the process dying mid-line.
    e.Cancel = true;
    interrupt.Cancel();
};
return await DeeplineCli.RunAsync(args, Console.Out, Console.Error, environment, interrupt.Token);
