using Deepline.Node.Configuration;

namespace Deepline.Tests.Shared;

/// <summary>
/// The store a test node runs on. <c>DEEPLINE_TEST_STORE=postgresql</c> (set by ./build.sh test for its second pass)
/// gives every node a throwaway PostgreSQL server of its own; otherwise the embedded SQLite file under the node's
/// data directory, as <c>./build.sh run</c> uses.
/// </summary>
public sealed class TestStore : IAsyncDisposable
{
    public const string Variable = "DEEPLINE_TEST_STORE";

    private readonly PostgresServer? _server;

    private TestStore(StoreConfig config, PostgresServer? server)
    {
        Config = config;
        _server = server;
    }

    public StoreConfig Config { get; }

    public static bool PostgreSqlRequested => Environment.GetEnvironmentVariable(Variable) == StoreConfig.PostgreSql;

    public static async Task<TestStore> CreateAsync(bool postgreSql = false)
    {
        if (!postgreSql && !PostgreSqlRequested) return new TestStore(StoreConfig.Embedded, null);
        var server = await PostgresServer.StartAsync();
        var connection = await server.CreateDatabaseAsync("deepline");
        return new TestStore(new StoreConfig(StoreConfig.PostgreSql, connection), server);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}
