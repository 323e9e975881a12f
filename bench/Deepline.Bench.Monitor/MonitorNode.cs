using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Resources;
using Deepline.Actors.Workflows;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Deepline.Bench;

/// <summary>The node both monitor benches measure: runs, monitor, resource coordinator on one SQLite store, no pools.</summary>
public static class MonitorNode
{
    public static async Task<(IHost Host, ActorSystem System, IActorRef Region)> StartAsync(
        PersistenceTarget target, WorkflowSettings settings, MonitorSettings monitor)
    {
        var index = new RunIndexStore(() => new SqliteConnection(target.ConnectionString), monitor.Thresholds);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddAkka("deepline", (akka, _) => akka
            .ConfigureLoggers(l => l.LogLevel = Akka.Event.LogLevel.ErrorLevel)
            .WithDeeplineCluster(new NodeClusterSettings("127.0.0.1", 0, [], []))
            .WithDeeplinePersistence(target.ConnectionString, target.ProviderName)
            .WithWorkflowRuns(settings, [])
            .WithDeadlockMonitor(monitor, index)
            .WithResourceCoordinator(ResourceSettings.Default)
            .WithIntegrityWatch());
        var host = builder.Build();
        await host.StartAsync();
        var system = host.Services.GetRequiredService<ActorSystem>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (Cluster.Get(system).SelfMember.Status != MemberStatus.Up)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the bench node did not come Up within 60 s");
            await Task.Delay(50);
        }
        return (host, system, await ActorRegistry.For(system).GetAsync<WorkflowRegion>());
    }
}
