using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Deepline.Node;
using Deepline.Node.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Deepline.Tests.Shared;

namespace Deepline.Ui.Tests;

/// <summary>
/// A real node (web host, actor system, SQLite file or the test store) on a free loopback port with a keys file, and
/// Debian's Chromium driven by Playwright. Browsers are never downloaded: the system's /usr/bin/chromium is used.
/// </summary>
public sealed class DashboardNode : IAsyncLifetime
{
    public const string TeamA = "ui-submitter-team-a-key-01";
    public const string TeamB = "ui-submitter-team-b-key-02";
    public const string Operator = "ui-operator-key-0000000003";
    public const string Admin = "ui-admin-key-00000000000004";
    public const string Worker = "ui-worker-key-0000000000005";
    public const string ChromiumPath = "/usr/bin/chromium";

    private WebApplication? _app;
    private Deepline.Tests.Shared.TestStore? _store;
    private IPlaywright? _playwright;

    public string Dir { get; } = Directory.CreateTempSubdirectory("deepline-ui-").FullName;

    public string Url { get; private set; } = "";

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var keys = Path.Combine(Dir, "keys.yaml");
        await File.WriteAllTextAsync(keys, $$"""
            keys:
              - {name: team-a-ci, key: {{TeamA}}, role: submitter, client_id: team-a}
              - {name: team-b-ci, key: {{TeamB}}, role: submitter, client_id: team-b}
              - {name: oncall, key: {{Operator}}, role: operator}
              - {name: platform, key: {{Admin}}, role: admin}
              - {name: pool, key: {{Worker}}, role: worker}
            """);
        var port = Loopback.FreePort();
        var d = DeeplineConfig.Defaults;
        _store = await Deepline.Tests.Shared.TestStore.CreateAsync();
        var config = d with
        {
            Store = _store.Config,
            Http = d.Http with { Port = port },
            Remoting = d.Remoting with { Port = 0 },
            Data = new DataConfig(Path.Combine(Dir, "data")),
            Workers = d.Workers with { Slots = 16 },
            Auth = new AuthConfig(keys),
            Limits = d.Limits with { RunThresholdMinS = 1, RatePerSecond = 0 },
            // Incidents settle at each scan; a long interval keeps a test's incident open while the page is checked.
            Deadlock = d.Deadlock with { CheckIntervalS = 600 },
        };
        _app = DeeplineNode.Build(config, logging: l => l.ClearProviders().SetMinimumLevel(LogLevel.Warning));
        await _app.StartAsync();
        Url = $"http://127.0.0.1:{port}";
        using var probe = Client(Operator);
        await Eventually.Until(async () =>
        {
            var r = await probe.GetAsync("/health");
            if (r.StatusCode != HttpStatusCode.OK) return false;
            return JsonNode.Parse(await r.Content.ReadAsStringAsync())!["deadlock_monitor"]!["running"]!.GetValue<bool>();
        }, TimeSpan.FromSeconds(60), "node healthy with its monitor running");

        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException($"{ChromiumPath} is missing: apt-get install -y chromium (./build.sh test installs it)");
        // Every expect waits up to 15 s for the page to show what it should (the shared build machine is slow).
        Assertions.SetDefaultExpectTimeout(15_000);
        _playwright = await Playwright.CreateAsync();
        // --no-sandbox: the tests may run as root, where Chromium refuses its sandbox.
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Headless = true, Args = ["--no-sandbox"] });
    }

    public HttpClient Client(string? key)
    {
        var c = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(30) };
        if (key is not null) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return c;
    }

    /// <summary>Submits a run as <paramref name="key"/>'s client and returns its id.</summary>
    public async Task<string> SubmitAsync(string key, string json)
    {
        using var c = Client(key);
        var r = await c.PostAsync("/runs", new StringContent(json, Encoding.UTF8, "application/json"));
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.Created, body);
        return JsonNode.Parse(body)!["run_id"]!.GetValue<string>();
    }

    public async Task<JsonNode> GetJsonAsync(string key, string path)
    {
        using var c = Client(key);
        var r = await c.GetAsync(path);
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"{path}: {(int)r.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    /// <summary>A fresh browser page (its own sessionStorage) signed in with <paramref name="key"/>.</summary>
    public async Task<IPage> SignedInPageAsync(string key, int width = 1280, int height = 900)
    {
        var context = await Browser.NewContextAsync(new() { ViewportSize = new() { Width = width, Height = height }, ColorScheme = ColorScheme.Light });
        var page = await context.NewPageAsync();
        await page.GotoAsync(Url + "/ui");
        await page.GetByLabel("API key", new() { Exact = true }).FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.Locator("#live")).ToHaveTextAsync("Live", new() { Timeout = 15_000 });
        return page;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
        if (_app is not null) await _app.DisposeAsync();
        if (_store is not null) await _store.DisposeAsync();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }

}

[CollectionDefinition(Name)]
public sealed class Dashboard : ICollectionFixture<DashboardNode>
{
    public const string Name = "dashboard";
}

