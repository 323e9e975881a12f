using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Deepline.Actors.Alerting;

public sealed record WebhookSettings(Uri Url, AlertFormat Format, string? RoutingKey, TimeSpan AttemptTimeout, int Retries, TimeSpan FirstBackoff);

/// <summary>
/// Posts alert bodies through the "deepline-webhook" client of <see cref="IHttpClientFactory"/>, whose resilience handler
/// (<see cref="AlertingServices.AddWebhookAlerting"/>) bounds each attempt and retries with exponential backoff, so one
/// slow or failing receiver costs bounded time; errors never contain the URL (it carries the webhook's token).
/// </summary>
public sealed class WebhookSender(WebhookSettings settings, IHttpClientFactory clients)
{
    /// <summary>alert_retries 0 means one attempt: Polly refuses a retry strategy of 0 attempts, so none is added then.</summary>
    internal static void Configure(ResiliencePipelineBuilder<HttpResponseMessage> builder, WebhookSettings settings)
    {
        if (settings.Retries > 0)
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = settings.Retries,
                Delay = settings.FirstBackoff,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutRejectedException>()
                    .HandleResult(r => (int)r.StatusCode >= 500 || (int)r.StatusCode == 429),
            });
        builder.AddTimeout(settings.AttemptTimeout);
    }

    public WebhookSettings Settings => settings;

    /// <returns>null when delivered, else a description of the last failure (without the URL).</returns>
    public async Task<string?> SendAsync(JsonObject body, CancellationToken ct)
    {
        try
        {
            using var response = await clients.CreateClient(AlertingServices.ClientName).PostAsJsonAsync(settings.Url, body, ct);
            return response.IsSuccessStatusCode ? null : $"receiver answered {(int)response.StatusCode} {response.ReasonPhrase}";
        }
        catch (TimeoutRejectedException)
        {
            return $"webhook timeout after {settings.Retries + 1} attempts of {settings.AttemptTimeout.TotalSeconds:0.#} s";
        }
        catch (HttpRequestException ex)
        {
            return $"webhook unreachable: {ex.HttpRequestError}";
        }
    }
}
