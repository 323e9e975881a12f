using Akka.Actor;
using Deepline.Actors.Alerting;
using Deepline.Domain;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Deepline.Tests.Shared;

namespace Deepline.Actors.Tests;

public sealed class AlertDeliveryTests
{
    /// <summary>The sender as the node gets it: the factory's webhook client with its resilience handler.</summary>
    private static WebhookSender Sender(WebhookSettings settings) =>
        new ServiceCollection().AddWebhookAlerting(settings).BuildServiceProvider()
            .GetRequiredService<WebhookSender>();

    private static AlertRequest Alert(string runId = "run-1") => new(
        new Detection(runId, "Data Analysis", StuckReason.stale_pending, DateTimeOffset.UtcNow.AddMinutes(-20), DateTimeOffset.UtcNow.AddMinutes(-20),
            ["a", "b"], "no task RUNNING"), DateTimeOffset.UtcNow, true);

    [Fact]
    public async Task A_receiver_answering_500_then_200_gets_the_alert_on_the_retry()
    {
        using var receiver = new AlertReceiver((500, TimeSpan.Zero), (200, TimeSpan.Zero));
        var sender = Sender(new WebhookSettings(receiver.Url, AlertFormat.generic, null, TimeSpan.FromSeconds(2), 3, TimeSpan.FromMilliseconds(50)));

        var error = await sender.SendAsync(AlertPayloads.Generic(Alert()), CancellationToken.None);

        Assert.Null(error);
        await Await.Until(() => receiver.Received.Count == 2, TimeSpan.FromSeconds(5), "the failed and the retried attempt reached the receiver");
    }

    [Fact]
    public async Task The_webhook_client_logs_nothing_of_the_url_at_any_level()
    {
        // The URL carries the webhook's token; the HTTP client factory's own request logging would print it.
        using var receiver = new AlertReceiver((500, TimeSpan.Zero), (200, TimeSpan.Zero));
        var logs = new CapturingLoggerProvider();
        var sender = new ServiceCollection()
            .AddLogging(l => l.AddProvider(logs).SetMinimumLevel(LogLevel.Trace))
            .AddWebhookAlerting(new WebhookSettings(receiver.Url, AlertFormat.generic, null, TimeSpan.FromSeconds(2), 1, TimeSpan.FromMilliseconds(50)))
            .BuildServiceProvider().GetRequiredService<WebhookSender>();

        Assert.Null(await sender.SendAsync(AlertPayloads.Generic(Alert()), CancellationToken.None));

        Assert.Equal(2, receiver.Received.Count);
        Assert.DoesNotContain(logs.Messages, m => m.Contains("SECRET-TOKEN", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Zero_retries_means_exactly_one_attempt()
    {
        // The documented range of alert_retries starts at 0; Polly refuses a retry strategy of 0 attempts.
        using var receiver = new AlertReceiver((500, TimeSpan.Zero), (200, TimeSpan.Zero));
        var sender = Sender(new WebhookSettings(receiver.Url, AlertFormat.generic, null, TimeSpan.FromSeconds(2), 0, TimeSpan.FromMilliseconds(50)));

        var error = await sender.SendAsync(AlertPayloads.Generic(Alert()), CancellationToken.None);

        Assert.NotNull(error);
        Assert.Single(receiver.Received);
    }

    [Fact]
    public async Task A_receiver_that_times_out_fails_within_bounded_time_without_leaking_the_url()
    {
        using var receiver = new AlertReceiver((200, TimeSpan.FromSeconds(30)), (200, TimeSpan.FromSeconds(30)));
        var sender = Sender(new WebhookSettings(receiver.Url, AlertFormat.slack, null, TimeSpan.FromMilliseconds(1000), 1, TimeSpan.FromMilliseconds(50)));

        var started = DateTime.UtcNow;
        var error = await sender.SendAsync(AlertPayloads.Slack(Alert()), CancellationToken.None);

        Assert.NotNull(error);
        Assert.Contains("timeout", error);
        Assert.DoesNotContain("SECRET-TOKEN", error);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        // The receiver records a body once it has read it, which may be after the sender gave up on that attempt; a 1 s
        // attempt leaves a loaded machine time to deliver each request before the sender gives up on it.
        await Await.Until(() => receiver.Received.Count == 2, TimeSpan.FromSeconds(5), "both attempts reached the receiver");
    }

    [Fact]
    public void PagerDuty_events_carry_routing_key_trigger_and_the_run_as_dedup_key()
    {
        var body = AlertPayloads.PagerDuty(Alert("wf-7"), "R0UT1NG");

        Assert.Equal("R0UT1NG", body["routing_key"]!.GetValue<string>());
        Assert.Equal("trigger", body["event_action"]!.GetValue<string>());
        Assert.Equal("wf-7", body["dedup_key"]!.GetValue<string>());
        Assert.Equal("error", body["payload"]!["severity"]!.GetValue<string>());
        Assert.Equal("stale_pending", body["payload"]!["custom_details"]!["reason"]!.GetValue<string>());
        Assert.Contains("wf-7", body["payload"]!["summary"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("https://hooks.slack.com/services/T/B/X", AlertFormat.slack)]
    [InlineData("https://events.pagerduty.com/v2/enqueue", AlertFormat.pagerduty)]
    [InlineData("https://alerts.example.org/hook", AlertFormat.generic)]
    public void The_format_is_inferred_from_the_webhook_host(string url, AlertFormat expected) =>
        Assert.Equal(expected, AlertPayloads.Resolve(AlertFormat.auto, new Uri(url)));

    [Fact]
    public void Slack_last_update_reads_like_the_seed()
    {
        var body = AlertPayloads.Slack(Alert());
        var lastUpdate = body["attachments"]![0]!["fields"]!.AsArray().Single(f => f!["title"]!.GetValue<string>() == "Last Update")!;
        Assert.Equal("20 minutes ago", lastUpdate["value"]!.GetValue<string>());
    }
}
