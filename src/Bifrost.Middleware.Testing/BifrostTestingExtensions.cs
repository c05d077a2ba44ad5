using Bifrost.Middleware;
using Bifrost.Middleware.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>Puts scripted providers into an app under test (<c>WebApplicationFactory&lt;Program&gt;</c>, TestHost).</summary>
public static class BifrostTestingWebHostBuilderExtensions
{
    /// <summary>
    /// Replaces the app's providers named in <paramref name="scripts"/> with scripted ones (after the app's own
    /// registrations, through <c>ConfigureTestServices</c>) and sets the testing defaults (see
    /// <see cref="BifrostTestingServiceCollectionExtensions.AddBifrostScripts"/>):
    /// <code>factory.WithWebHostBuilder(web => web.UseBifrostScripts(scripts))</code>
    /// </summary>
    /// <param name="builder">The web host builder of the app under test.</param>
    /// <param name="scripts">The scripts; name their providers before the host is built.</param>
    /// <returns>The builder.</returns>
    public static IWebHostBuilder UseBifrostScripts(this IWebHostBuilder builder, BifrostScripts scripts)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(scripts);
        return builder.ConfigureTestServices(services => services.AddBifrostScripts(scripts));
    }
}

/// <summary>Registers scripted providers.</summary>
public static class BifrostTestingServiceCollectionExtensions
{
    /// <summary>The attempt timeout the testing defaults give scripted providers (a scripted delay longer than it times out).</summary>
    public static readonly TimeSpan ScriptedAttemptTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Serves the providers named in <paramref name="scripts"/> by their scripts, whatever the app configured for them
    /// (their <c>Type</c>, <c>BaseUrl</c> and keys are not used: no network; their <c>Models</c> still apply), adds those the
    /// app does not configure, and sets the testing defaults:
    /// <list type="bullet">
    /// <item>every provider: <c>RetryBaseDelay</c> and <c>RetryMaxDelay</c> 0 — retries are immediate (a Retry-After is
    /// not waited for: the fallbacks are tried), so a scripted 503 then 200 completes at once; <c>MaxRetries</c> is kept;</item>
    /// <item>scripted providers: <c>Timeout</c> <see cref="ScriptedAttemptTimeout"/> (unless configured shorter);</item>
    /// <item>jobs: <c>RetryBaseDelay</c> and <c>RetryMaxDelay</c> 0.</item>
    /// </list>
    /// Call it after the app's registrations (<c>ConfigureTestServices</c> does). The defaults are a
    /// <c>PostConfigure</c>: a later <c>services.PostConfigure&lt;BifrostOptions&gt;(...)</c> changes them.
    /// </summary>
    /// <param name="services">The services of the app under test.</param>
    /// <param name="scripts">The scripts; name their providers before calling this.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddBifrostScripts(this IServiceCollection services, BifrostScripts scripts)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(scripts);
        var names = scripts.Register();
        services.RemoveAll<BifrostScripts>();
        services.RemoveAll<ScriptedProviderAdapter>();
        services.AddSingleton(scripts);
        services.AddSingleton(static sp => new ScriptedProviderAdapter(sp.GetRequiredService<BifrostScripts>(), sp.GetService<TimeProvider>() ?? TimeProvider.System));

        // Registered by name after the app's registrations: the last registration of a name wins over its configured Type.
        var bifrost = new TestingBuilder(services);
        foreach (var name in names)
        {
            bifrost.AddProvider(name, static sp => sp.GetRequiredService<ScriptedProviderAdapter>());
        }

        services.PostConfigure<BifrostOptions>(options =>
        {
            foreach (var name in names)
            {
                if (!options.Providers.TryGetValue(name, out var provider))
                {
                    options.Providers[name] = provider = new ProviderOptions();
                }

                if (provider.Timeout > ScriptedAttemptTimeout)
                {
                    provider.Timeout = ScriptedAttemptTimeout;
                }
            }

            foreach (var provider in options.Providers.Values)
            {
                if (provider is not null)
                {
                    provider.RetryBaseDelay = TimeSpan.Zero;
                    provider.RetryMaxDelay = TimeSpan.Zero;
                }
            }

            options.Jobs.RetryBaseDelay = TimeSpan.Zero;
            options.Jobs.RetryMaxDelay = TimeSpan.Zero;
        });
        return services;
    }

    private sealed class TestingBuilder(IServiceCollection services) : IBifrostBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
