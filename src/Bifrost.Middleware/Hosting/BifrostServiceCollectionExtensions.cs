using Bifrost.Middleware;
using Bifrost.Middleware.Configuration;
using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Hosting;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Providers.ChatClient;
using Bifrost.Middleware.Providers.Cohere;
using Bifrost.Middleware.Providers.Gemini;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Providers.OpenAI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Bifrost gateway.</summary>
public static class BifrostServiceCollectionExtensions
{
    /// <summary>Registers the gateway; configure it with <c>services.Configure&lt;BifrostOptions&gt;</c> or the builder.</summary>
    /// <param name="services">The services.</param>
    /// <returns>A builder to add providers and stores.</returns>
    public static IBifrostBuilder AddBifrost(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        return AddCore(services);
    }

    /// <summary>Registers the gateway, configured in code.</summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Configures the options (providers, keys, models, retries).</param>
    /// <returns>A builder to add providers and stores.</returns>
    public static IBifrostBuilder AddBifrost(this IServiceCollection services, Action<BifrostOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var builder = AddCore(services);
        services.Configure(configure);
        return builder;
    }

    /// <summary>
    /// Registers the gateway, configured from a configuration section (conventionally <c>Bifrost</c>). At start, each key
    /// of the section that binds to no setting (a misspelt <c>Bifrost:Provider</c>, <c>Providers:openai:Modles</c>) is
    /// logged as a warning, and so are a missing or empty section and a gateway with no provider at all.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configuration">The section holding <see cref="BifrostOptions"/>.</param>
    /// <returns>A builder to add providers and stores; use <c>ConfigureProvider</c> on it for further configuration in code.</returns>
    public static IBifrostBuilder AddBifrost(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = AddCore(services);
        services.Configure<BifrostOptions>(configuration);
        services.AddSingleton(new BifrostConfigurationSource(configuration)); // checked at start for keys that bind to nothing
        return builder;
    }

    private static BifrostBuilder AddCore(IServiceCollection services)
    {
        services.AddOptions<BifrostOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BifrostOptions>, BifrostOptionsValidator>());

        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.AddLogging();
        services.TryAddSingleton<BifrostMetrics>();
        services.TryAddSingleton<OperationalMetrics>();
        services.TryAddSingleton<Bifrost.Middleware.Dashboard.DashboardStats>();
        services.TryAddSingleton<ProviderRegistrations>();
        services.TryAddSingleton<ProviderRegistry>();
        services.TryAddSingleton(Bifrost.Middleware.Tokenization.TokenCounter.Shared);
        services.TryAddSingleton<IBifrostClient, BifrostGateway>();

        // One descriptor per operation; routes, 405 answers, job handlers and batch lines are derived from the registry.
        foreach (var operation in InferenceOperations.All.Concat(AudioOperations.All).Concat(EndpointOperations.All)
                     .Concat(AnthropicOperations.All)) // Anthropic native passthrough: the /anthropic routes' operations (no routes under MapBifrost's prefix)
        {
            AddOnce(services, operation);
        }

        services.TryAddSingleton<OperationRegistry>();

        // The pipeline: layers (ordered by GatewayLayer.Order) around the attempt loop.
        services.TryAddSingleton<Bifrost.Middleware.Governance.Pricing.PricingCatalog>();
        services.TryAddSingleton<RoutingHandler>();
        services.TryAddSingleton<GatewayPipeline>();
        AddOnce(services, PluginLayer.Registration);
        AddOnce(services, TelemetryLayer.Registration);
        AddOnce(services, Bifrost.Middleware.Governance.GovernanceLayer.Registration);
        services.TryAddSingleton<Bifrost.Middleware.Governance.VirtualKeyStore>();
        services.TryAddSingleton<Bifrost.Middleware.Governance.GovernanceRateLimiter>();
        services.TryAddSingleton<Bifrost.Middleware.Governance.IGovernanceStore>(static sp => new Bifrost.Middleware.Governance.InMemoryGovernanceStore(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<Bifrost.Middleware.Governance.IGovernanceCounterStore>(static sp => new Bifrost.Middleware.Governance.LocalGovernanceCounters(sp.GetRequiredService<Bifrost.Middleware.Governance.IGovernanceStore>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<Bifrost.Middleware.Governance.UsageLedger>();
        services.TryAddSingleton<Bifrost.Middleware.Governance.GovernanceSnapshotRefresher>();
        services.AddHostedService(static sp => sp.GetRequiredService<Bifrost.Middleware.Governance.GovernanceSnapshotRefresher>());
        services.AddHostedService(static sp => sp.GetRequiredService<Bifrost.Middleware.Governance.UsageLedger>());
        Bifrost.Middleware.RequestLog.RequestLogServices.Add(services); // the request log: layer, writer, in-memory store, query service

        // Response cache (Caching/): the layer is in the pipeline only when Bifrost:Cache:Enabled; HybridCache is the host's
        // own when it registered one (AddHybridCache registers with TryAdd), its L2 whatever IDistributedCache the host has.
        services.TryAddSingleton<Bifrost.Middleware.Caching.ResponseCacheSettings>();
        services.TryAddSingleton<Bifrost.Middleware.Caching.ResponseCacheMetrics>();
        // The semantic cache's vector collection: in memory unless the host registered another (UsePostgreSqlSemanticCache).
        services.TryAddSingleton<Microsoft.Extensions.VectorData.VectorStoreCollection<string, Bifrost.Middleware.Caching.SemanticCacheEntry>>(static sp =>
            new Bifrost.Middleware.Caching.InMemorySemanticCacheCollection(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<BifrostOptions>>().Value.Cache.Semantic.MaxEntries));
        AddOnce(services, Bifrost.Middleware.Caching.ResponseCacheLayer.Registration);
        services.AddHybridCache();
        services.TryAddSingleton<LocalProviderAdapter>();
        services.TryAddSingleton<OpenAICompatibleAdapter>();
        services.TryAddSingleton<AnthropicAdapter>();
        services.TryAddSingleton<CohereAdapter>();
        services.TryAddSingleton<GeminiAdapter>();
        services.TryAddSingleton<Bifrost.Middleware.Providers.Vertex.VertexAdapter>();
        services.TryAddSingleton<Bifrost.Middleware.Providers.Bedrock.BedrockAdapter>();
        services.TryAddKeyedSingleton(Bifrost.Middleware.Providers.Azure.AzureProviderType.AdapterKey, static (sp, _) => OpenAICompatibleAdapter.ForAzure(sp));

        // Provider types by name (as YARP's named policies): Providers:<name>:Type picks one; AddProviderType adds more.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, OpenAIProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, OpenAICompatibleProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, AnthropicProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, CohereProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, GeminiProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, Bifrost.Middleware.Providers.Vertex.VertexProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, Bifrost.Middleware.Providers.Azure.AzureProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, Bifrost.Middleware.Providers.Bedrock.BedrockProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, LocalProviderType>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProviderType, ChatClientProviderType>());
        Bifrost.Middleware.Providers.OpenAI.Presets.OpenAIPresets.Register(services); // groq, mistral, ..., ollama, vllm, lmstudio
        services.TryAddSingleton<BifrostMarkerService>();

        // Start-time checks (configuration traps, endpoints requiring authorization the host cannot run) and the last
        // resort that answers a Bifrost route's failure in the host's pipeline in the Bifrost shape.
        services.TryAddSingleton<BifrostEndpointSources>();
        services.AddHostedService<BifrostStartupCheck>();
        services.TryAddEnumerable(ServiceDescriptor.Transient<Microsoft.AspNetCore.Hosting.IStartupFilter, BifrostHostErrorStartupFilter>());

        // OpenAPI: generators describe types with the host's HTTP JSON options; our wire types resolve there with their
        // wire names (host types keep the host's naming), and the routes' path parameters are declared.
        services.TryAddEnumerable(ServiceDescriptor.Transient<Microsoft.AspNetCore.Mvc.ApiExplorer.IApiDescriptionProvider, BifrostApiDescriptionProvider>());
        services.PostConfigure<Microsoft.AspNetCore.Http.Json.JsonOptions>(static options =>
        {
            var chain = options.SerializerOptions.TypeInfoResolverChain;
            if (!options.SerializerOptions.IsReadOnly && !chain.Contains(WireNamesResolver.Instance))
            {
                chain.Insert(0, WireNamesResolver.Instance);
            }
        });

        // Jobs: async inference now, batches later. The store is the truth; the doorbell only wakes workers.
        services.TryAddSingleton<IJobStore>(static sp => new InMemoryJobStore(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<JobDoorbell>();
        services.TryAddSingleton<IJobDoorbell>(static sp => sp.GetRequiredService<JobDoorbell>());
        services.TryAddSingleton<JobCancellationRegistry>();
        services.TryAddSingleton<IJobCancellationSignal>(static sp => sp.GetRequiredService<JobCancellationRegistry>());
        services.TryAddSingleton<AsyncJobService>();
        services.TryAddSingleton<IJobOwnerResolver, DefaultJobOwnerResolver>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IJobHandler, BatchJobHandler>());
        services.TryAddSingleton<BatchService>();
        services.TryAddSingleton<NativeBatchRunner>();
        services.TryAddSingleton<JobProcessor>();

        // Files: the file-system store by default (Bifrost:Files:Directory, else App_Data/bifrost/files under the content root).
        services.TryAddSingleton<IFileStore>(static sp =>
        {
            var directory = sp.GetRequiredService<IOptions<BifrostOptions>>().Value.Files.Directory;
            if (string.IsNullOrWhiteSpace(directory))
            {
                var root = sp.GetService<Microsoft.Extensions.Hosting.IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory;
                directory = Path.Combine(root, "App_Data", "bifrost", "files");
            }

            return new FileSystemFileStore(directory, sp.GetRequiredService<TimeProvider>());
        });
        services.AddHostedService(static sp => sp.GetRequiredService<JobProcessor>());
        OpenAICompatibleAdapter.AddHttpClient(services);
        AnthropicAdapter.AddHttpClient(services);
        CohereAdapter.AddHttpClient(services);
        GeminiAdapter.AddHttpClient(services);
        Bifrost.Middleware.Providers.Vertex.VertexAdapter.AddHttpClient(services);
        Bifrost.Middleware.Providers.Bedrock.BedrockAdapter.AddHttpClient(services);

        return new BifrostBuilder(services);
    }

    /// <summary>
    /// Registers a provider adapter type under a provider name, so models <c>name/...</c> are routed to it whatever the
    /// provider's configured <c>Type</c>. The adapter is created once (a singleton) with constructor injection. Options for
    /// the provider (keys, models, retries) may still come from configuration under <c>Providers:name</c>.
    /// </summary>
    /// <typeparam name="TAdapter">The adapter type.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The provider name (the prefix of model strings).</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddProvider<TAdapter>(this IBifrostBuilder builder, string name)
        where TAdapter : class, IProviderAdapter
    {
        ArgumentNullException.ThrowIfNull(builder);
        ValidateProviderName(name);
        builder.Services.TryAddSingleton<TAdapter>();
        builder.Services.AddSingleton(new ProviderRegistration(name, AdapterType<TAdapter>(typeof(TAdapter).Name)));
        return builder;
    }

    /// <summary>Registers a provider adapter created by a factory under a provider name.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The provider name (the prefix of model strings).</param>
    /// <param name="factory">Creates the adapter once.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddProvider(this IBifrostBuilder builder, string name, Func<IServiceProvider, IProviderAdapter> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        ValidateProviderName(name);
        builder.Services.AddSingleton(new ProviderRegistration(name, new ProviderType(name, (services, _) => factory(services))));
        return builder;
    }

    /// <summary>
    /// Registers a provider type: every provider whose configuration says <c>"Type": "typeName"</c> (or, without a
    /// <c>Type</c>, is named <paramref name="typeName"/>) is served by <typeparamref name="TAdapter"/>, created once (a
    /// singleton) with constructor injection and called with each provider's <see cref="ProviderContext"/>. A type named
    /// like a built-in one (<c>openai</c>, <c>anthropic</c>, <c>local</c>, <c>chatclient</c>) replaces it.
    /// </summary>
    /// <typeparam name="TAdapter">The adapter type.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <param name="typeName">The type name configuration uses in <c>Providers:&lt;name&gt;:Type</c> (compared ignoring case).</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddProviderType<TAdapter>(this IBifrostBuilder builder, string typeName)
        where TAdapter : class, IProviderAdapter
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(typeName);
        builder.Services.TryAddSingleton<TAdapter>();
        builder.Services.AddSingleton<IProviderType>(AdapterType<TAdapter>(typeName.Trim()));
        return builder;
    }

    /// <summary>
    /// Registers the <see cref="IUpstreamAuthenticator"/> of provider <paramref name="providerName"/> (a keyed singleton,
    /// keyed by the provider name): the built-in HTTP adapters call it on every upstream request of that provider, so a
    /// credential that is not a static key (an Entra ID or Google token, a request signature) is added or refreshed
    /// there. A provider with an authenticator needs no <c>Keys</c>. Names are compared ignoring case; registering again
    /// for a name replaces it.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="providerName">The provider name, as configured under <c>Providers</c> (the prefix of model strings).</param>
    /// <param name="factory">Creates the authenticator once.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddUpstreamAuthenticator(this IBifrostBuilder builder, string providerName, Func<IServiceProvider, IUpstreamAuthenticator> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        ValidateProviderName(providerName);
        builder.Services.AddKeyedSingleton<IUpstreamAuthenticator>(providerName, (services, _) => factory(services));
        builder.Services.AddSingleton(new UpstreamAuthenticatorRegistration(providerName));
        return builder;
    }

    private static ProviderType AdapterType<TAdapter>(string typeName)
        where TAdapter : class, IProviderAdapter =>
        new(typeName, static (services, _) => services.GetRequiredService<TAdapter>());

    /// <summary>Adds a plugin (a singleton created with constructor injection). Plugins run in registration order.</summary>
    /// <typeparam name="TPlugin">The plugin type.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddPlugin<TPlugin>(this IBifrostBuilder builder)
        where TPlugin : class, IBifrostPlugin
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IBifrostPlugin, TPlugin>();
        return builder;
    }

    /// <summary>Adds a plugin instance. Plugins run in registration order.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="plugin">The plugin.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddPlugin(this IBifrostBuilder builder, IBifrostPlugin plugin)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(plugin);
        builder.Services.AddSingleton(plugin);
        return builder;
    }

    /// <summary>Configures the options of one provider in code (after configuration binding).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The provider name.</param>
    /// <param name="configure">Configures the provider.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder ConfigureProvider(this IBifrostBuilder builder, string name, Action<ProviderOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        ValidateProviderName(name);
        builder.Services.Configure<BifrostOptions>(options =>
        {
            if (!options.Providers.TryGetValue(name, out var provider))
            {
                provider = new ProviderOptions();
                options.Providers[name] = provider;
            }

            configure(provider);
        });
        return builder;
    }

    /// <summary>Adds a singleton instance once, however often <c>AddBifrost</c> is called (TryAddEnumerable would keep one instance per implementation type).</summary>
    private static void AddOnce<TService>(IServiceCollection services, TService instance)
        where TService : class
    {
        foreach (var descriptor in services)
        {
            if (descriptor.ServiceType == typeof(TService) && !descriptor.IsKeyedService && ReferenceEquals(descriptor.ImplementationInstance, instance))
            {
                return;
            }
        }

        services.AddSingleton(instance);
    }

    private static void ValidateProviderName(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Provider name '{name}' must not contain '/'.", nameof(name));
        }
    }

    private sealed class BifrostBuilder(IServiceCollection services) : IBifrostBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
