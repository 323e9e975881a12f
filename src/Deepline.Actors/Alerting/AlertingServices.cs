using Microsoft.Extensions.DependencyInjection;

namespace Deepline.Actors.Alerting;

public static class AlertingServices
{
    /// <summary>The named client alerts are posted with.</summary>
    public const string ClientName = "deepline-webhook";

    /// <summary>
    /// The webhook client (IHttpClientFactory, with a resilience handler: per-attempt timeout, retries with exponential
    /// backoff on failures, 5xx and 429) and the <see cref="WebhookSender"/> the deadlock monitor alerts through; nothing
    /// without settings (no webhook configured).
    /// </summary>
    public static IServiceCollection AddWebhookAlerting(this IServiceCollection services, WebhookSettings? settings)
    {
        if (settings is null) return services;
        services.AddHttpClient(ClientName, client => client.Timeout = Timeout.InfiniteTimeSpan) // the handler bounds every attempt
            // The factory's request logging prints the URL, which carries the webhook's token: the sender reports failures itself.
            .RemoveAllLoggers()
            .AddResilienceHandler("webhook", builder => WebhookSender.Configure(builder, settings));
        services.AddSingleton(sp => new WebhookSender(settings, sp.GetRequiredService<IHttpClientFactory>()));
        return services;
    }
}
