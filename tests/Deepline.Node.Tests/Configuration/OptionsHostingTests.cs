using Deepline.Node.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Deepline.Tests.Shared;
using Xunit;

namespace Deepline.Node.Tests.Configuration;

/// <summary>The options sections in the node's DI: bound from its configuration and validated when the host starts.</summary>
public sealed class OptionsHostingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-options-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private DeeplineConfig Config()
    {
        var d = DeeplineConfig.Defaults;
        return d with { Http = d.Http with { Port = Loopback.FreePort() }, Remoting = d.Remoting with { Port = 0 }, Data = new DataConfig(_dir) };
    }

    [Fact]
    public async Task Each_section_is_in_DI_with_the_nodes_values()
    {
        var c = Config();
        c = c with
        {
            Deadlock = c.Deadlock with { CheckIntervalS = 45, MonitorRole = "monitor" },
            Workers = c.Workers with { Pools = new Dictionary<string, int> { ["tenant:a"] = 3 }, ProcessAllowedCommands = ["python3"] },
        };
        await using var app = DeeplineNode.Build(c);

        var deadlock = app.Services.GetRequiredService<IOptions<DeadlockOptions>>().Value;
        Assert.Equal(c.Deadlock, deadlock.ToConfig());
        var workers = app.Services.GetRequiredService<IOptions<WorkersOptions>>().Value;
        Assert.Equal(3, workers.Pools["tenant:a"]); // a pool name with ':' survives the configuration keys
        Assert.Equal(["python3"], workers.Process.AllowedCommands);
        Assert.Equal(c.Http, app.Services.GetRequiredService<IOptions<HttpOptions>>().Value.ToConfig());
    }

    [Fact]
    public async Task A_configuration_built_in_code_that_the_validators_refuse_does_not_start()
    {
        // The loader would have refused this key; a configuration built another way meets the same validator at start.
        var c = Config() with { Admin = new AdminConfig("short") };
        await using var app = DeeplineNode.Build(c);
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Equal("orchestrator.admin.key: must be at least 16 characters without spaces (or empty: no admin key)", Assert.Single(e.Failures));
        Assert.DoesNotContain("short", e.Message);
    }
}
