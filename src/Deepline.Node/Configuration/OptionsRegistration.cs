using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Deepline.Node.Configuration;

/// <summary>
/// The options sections in DI (<c>IOptions&lt;DeadlockOptions&gt;</c>, ...), bound from the node's configuration and
/// validated when the host starts by the same validators the loader ran.
/// </summary>
public static class OptionsRegistration
{
    /// <summary>
    /// Registers every section bound from <paramref name="config"/> (through its own <see cref="IConfiguration"/>, not the
    /// host's, whose unprefixed environment variables must not reach the node's options unseen by the loader).
    /// </summary>
    public static IServiceCollection AddDeeplineOptions(this IServiceCollection services, DeeplineConfig config, ConfigOrigins? origins = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(Flatten(config)).Build();
        services.AddSingleton(origins ?? ConfigOrigins.None);
        Add<DeadlockOptions, DeadlockOptionsValidator>(services, configuration, DeadlockOptions.Section);
        Add<HttpOptions, HttpOptionsValidator>(services, configuration, HttpOptions.Section);
        Add<RemotingOptions, RemotingOptionsValidator>(services, configuration, RemotingOptions.Section);
        Add<DataDirOptions, DataDirOptionsValidator>(services, configuration, DataDirOptions.Section);
        Add<LoggingOptions, LoggingOptionsValidator>(services, configuration, LoggingOptions.Section);
        Add<RunsOptions, RunsOptionsValidator>(services, configuration, RunsOptions.Section);
        Add<AdminOptions, AdminOptionsValidator>(services, configuration, AdminOptions.Section);
        Add<RedisOptions, RedisOptionsValidator>(services, configuration, RedisOptions.Section);
        Add<LimitsOptions, LimitsOptionsValidator>(services, configuration, LimitsOptions.Section);
        Add<StoreOptions, StoreOptionsValidator>(services, configuration, StoreOptions.Section);
        services.AddOptions<AuthOptions>().Bind(configuration.GetSection(AuthOptions.Section));
        services.AddOptions<ResourcesOptions>().Bind(configuration.GetSection(ResourcesOptions.Section));
        services.AddOptions<RetryOptions>().Bind(configuration.GetSection(RetryOptions.Section));
        services.AddOptions<WorkersOptions>()
            .Configure(o =>
            {
                var bound = WorkersOptions.Bind(configuration);
                (o.Enabled, o.Slots, o.CancelGraceS, o.Process, o.Pools) = (bound.Enabled, bound.Slots, bound.CancelGraceS, bound.Process, bound.Pools);
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<WorkersOptions>, WorkersOptionsValidator>();
        return services;
    }

    private static void Add<TOptions, TValidator>(IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
    }

    /// <summary>A configuration as configuration keys and values, key by key from the key table.</summary>
    public static IEnumerable<KeyValuePair<string, string?>> Flatten(DeeplineConfig config)
    {
        foreach (var key in ConfigKeys.All)
        {
            var path = DeeplineConfigurationSources.ConfigurationKey(key);
            switch (key.Read(config))
            {
                case int n:
                    yield return new(path, n.ToString(CultureInfo.InvariantCulture));
                    break;
                case bool b:
                    yield return new(path, b ? "true" : "false");
                    break;
                case string s:
                    yield return new(path, s);
                    break;
                case IReadOnlyDictionary<string, int> pools:
                    foreach (var (name, slots) in pools)
                        yield return new($"{path}:{name}", slots.ToString(CultureInfo.InvariantCulture));
                    break;
                case IEnumerable<string> items:
                    var i = 0;
                    foreach (var item in items)
                        yield return new($"{path}:{i++}", item);
                    break;
            }
        }
    }
}
