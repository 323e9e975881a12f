using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Security;

/// <summary>A real node with a keys file: one key per role, two clients, a pool-bound worker, and small limits.</summary>
public class SecuredNode : IAsyncLifetime
{
    public const string TeamA = "submitter-team-a-key-0001";
    public const string TeamB = "submitter-team-b-key-0002";
    public const string Worker = "worker-any-pool-key-00003";
    public const string CpuWorker = "worker-cpu-pool-key-00004";
    public const string Operator = "operator-key-000000000005";
    public const string Admin = "admin-key-000000000000006";
    public const string HeaderAdminKey = "secured-node-admin-header-key";

    private WebApplication? _app;
    private Deepline.Tests.Shared.TestStore? _store;

    public string Dir { get; } = Directory.CreateTempSubdirectory("deepline-secured-").FullName;

    public string KeysPath => Path.Combine(Dir, "keys.yaml");

    public DeeplineConfig Config { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    public IServiceProvider Services => _app!.Services;

    /// <summary>The admin key is listed only as its SHA-256, as an operator who keeps no plain keys on disk would.</summary>
    public static string KeysYaml(params string[] extra) => $$"""
        keys:
          - {name: team-a-ci, key: {{TeamA}}, role: submitter, client_id: team-a}
          - {name: team-b-ci, key: {{TeamB}}, role: submitter, client_id: team-b}
          - {name: any-worker, key: {{Worker}}, role: worker}
          - {name: cpu-worker, key: {{CpuWorker}}, role: worker, pools: [cpu]}
          - {name: ops, key: {{Operator}}, role: operator}
          - {name: root, key_sha256: {{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Admin))).ToLowerInvariant()}}, role: admin}
        {{string.Join("\n", extra)}}
        """;

    protected virtual LimitsConfig Limits(LimitsConfig d) =>
        d with { MaxTasksPerRun = 20, MaxEdgesPerRun = 30, MaxValueBytes = 1024, MaxBodyBytes = 65_536, BodyTimeoutS = 2, RatePerSecond = 0, RunThresholdMinS = 1 };

    protected virtual ResourcesConfig Resources(ResourcesConfig d) => d;

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(KeysPath, KeysYaml());
        _store = await Deepline.Tests.Shared.TestStore.CreateAsync();
        (_app, Config) = await SingleNode.StartOnFreePortAsync(port =>
        {
            var d = SingleNode.LoopbackConfig(Path.Combine(Dir, "data"), port);
            return d with
            {
                Store = _store.Config,
                Workers = d.Workers with { Slots = 2 },
                Admin = new AdminConfig(HeaderAdminKey),
                Auth = new AuthConfig(KeysPath),
                Limits = Limits(d.Limits),
                Resources = Resources(d.Resources),
            };
        }, l => l.ClearProviders().SetMinimumLevel(LogLevel.Warning));
        BaseAddress = new Uri($"http://127.0.0.1:{Config.Http.Port}");
        using var probe = Client(null);
        await Eventually.Until(async () => (await probe.GetAsync("/health")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30), "node healthy");
    }

    /// <summary>A client sending <paramref name="key"/> as its bearer key (null: no key).</summary>
    public HttpClient Client(string? key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (key is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        if (_store is not null) await _store.DisposeAsync();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}
