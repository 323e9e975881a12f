using Deepline.Node.Configuration;
using Microsoft.Extensions.Configuration;
using Xunit;

namespace Deepline.Node.Tests.Configuration;

/// <summary>
/// The configuration sources under the loader: what standard configuration layering would get wrong for our files
/// and variables (lists merged entry by entry, the seed's short form, yes/no booleans) is right here.
/// </summary>
public sealed class ConfigurationSourcesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-sources-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string yaml)
    {
        var path = Path.Combine(_dir, "c.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    [Fact]
    public void A_list_set_in_the_environment_replaces_the_files_list_rather_than_its_first_entries()
    {
        var path = Write("orchestrator:\n  remoting:\n    roles: [a, b, c]\n  workers:\n    process:\n      allowed_commands: [python3, rsync]\n");
        var env = new Dictionary<string, string?> { ["DEEPLINE_REMOTING_ROLES"] = "z", ["DEEPLINE_WORKERS_PROCESS_ALLOWED_COMMANDS"] = "" };

        var c = ConfigLoader.Load(path, env, _dir);

        Assert.Equal(["z"], c.Remoting.Roles);
        Assert.Empty(c.Workers.ProcessAllowedCommands);
        // and the file's lists stand when the environment is silent
        Assert.Equal(["a", "b", "c"], ConfigLoader.Load(path, new Dictionary<string, string?>(), _dir).Remoting.Roles);
    }

    [Fact]
    public void The_configuration_holds_the_files_values_under_the_environment_and_the_seed_short_form_under_orchestrator()
    {
        var path = Write("deadlock:\n  check_interval_s: 300\n");
        var configuration = DeeplineConfigurationSources.Build(path, new Dictionary<string, string?> { ["DEEPLINE_HTTP_PORT"] = "9123" });

        Assert.Equal("300", configuration["orchestrator:deadlock:check_interval_s"]);
        Assert.Null(configuration["deadlock:check_interval_s"]);
        Assert.Equal("9123", configuration["orchestrator:http:port"]);
        Assert.Equal("900", configuration["orchestrator:deadlock:pending_stale_s"]); // the key table's default, lowest source
    }

    [Fact]
    public void Booleans_in_the_words_the_key_table_accepts_bind_as_booleans()
    {
        var path = Write("orchestrator:\n  workers:\n    enabled: no\n");
        Assert.False(ConfigLoader.Load(path, new Dictionary<string, string?>(), _dir).Workers.Enabled);
        Assert.False(ConfigLoader.Load(null, new Dictionary<string, string?> { ["DEEPLINE_DEADLOCK_CANCEL_ON_DEADLOCK"] = "0" }, _dir).Deadlock.CancelOnDeadlock);
    }
}
