using Bifrost.Middleware.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Hosting;

/// <summary>
/// Checks at start what would otherwise fail (or be ignored) only when requests arrive:
/// <list type="bullet">
/// <item>configuration traps, each one <see cref="LogLevel.Warning"/>: keys under the section given to
/// <c>AddBifrost(IConfiguration)</c> that bind to no setting (<c>Bifrost:Provider</c>, <c>Providers:openai:Modles</c>),
/// an empty or missing section, no provider at all;</item>
/// <item>the endpoints <c>MapBifrost</c> mapped, built with every convention the host added: one that requires
/// authorization in a host whose authorization or authentication cannot run would answer every request with an empty
/// 500, so the host does not start (an <see cref="InvalidOperationException"/> saying what to add).</item>
/// </list>
/// </summary>
internal sealed class BifrostStartupCheck(
    IServiceProvider services,
    IOptions<BifrostOptions> options,
    ProviderRegistrations registrations,
    IEnumerable<BifrostConfigurationSource> configurations,
    BifrostEndpointSources endpoints,
    ILogger<BifrostStartupCheck> logger) : IHostedService
{
    /// <summary>Top-level sections of <c>Bifrost</c> read by the store packages' documented setups (<c>Bifrost:Sqlite:Path</c>, <c>Bifrost:PostgreSql</c>), not by <see cref="BifrostOptions"/>.</summary>
    private static readonly string[] StoreSections = ["Sqlite", "PostgreSql"];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        WarnAboutConfiguration();
        await CheckAuthorizationAsync().ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void WarnAboutConfiguration()
    {
        foreach (var configuration in configurations)
        {
            var section = configuration.Section;
            var path = section is IConfigurationSection named ? named.Path : "(root)";
            if (!section.GetChildren().Any())
            {
                HostingLog.ConfigurationSectionEmpty(logger, path);
                continue;
            }

            foreach (var (key, closest) in UnknownConfigurationKeys.Find<BifrostOptions>(section, StoreSections))
            {
                HostingLog.UnknownConfigurationKey(logger, key, closest is null ? "none" : $"'{closest}'");
            }
        }

        if (options.Value.Providers.Count == 0 && !registrations.Names.Any())
        {
            HostingLog.NoProvider(logger);
        }
    }

    private async Task CheckAuthorizationAsync()
    {
        await CheckAuthorizationAsync(endpoints.Snapshot()).ConfigureAwait(false);
        var admin = endpoints.AdminSnapshot();
        if (admin.Length != 0 && !await CheckAuthorizationAsync(admin).ConfigureAwait(false))
        {
            HostingLog.AdminWithoutAuthorization(logger, admin.SelectMany(static source => source.Endpoints).Select(static e => (e as RouteEndpoint)?.RoutePattern.RawText).FirstOrDefault(static p => p is not null) ?? "(unknown)");
        }
    }

    /// <summary>Checks the first endpoint of <paramref name="sources"/> that requires authorization; false when none does.</summary>
    private async Task<bool> CheckAuthorizationAsync(EndpointDataSource[] sources)
    {
        foreach (var endpoint in sources.SelectMany(static source => source.Endpoints))
        {
            var authorizeData = endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>();
            var policies = endpoint.Metadata.GetOrderedMetadata<AuthorizationPolicy>();
            if (authorizeData.Count == 0 && policies.Count == 0 && endpoint.Metadata.GetMetadata<IAuthorizationRequirementData>() is null)
            {
                continue;
            }

            // Every Bifrost endpoint carries the same conventions; the first one that requires authorization decides.
            await CheckAuthorizationAsync(endpoint.DisplayName ?? "A Bifrost endpoint", authorizeData, policies).ConfigureAwait(false);
            return true;
        }

        return false;
    }

    private async Task CheckAuthorizationAsync(string endpoint, IReadOnlyList<IAuthorizeData> authorizeData, IReadOnlyList<AuthorizationPolicy> policies)
    {
        const string Consequence = "so every request to it would fail with an empty 500";
        if (services.GetService<IAuthorizationPolicyProvider>() is not { } policyProvider || services.GetService<IAuthorizationHandlerProvider>() is null)
        {
            throw new InvalidOperationException(
                $"'{endpoint}' requires authorization (RequireAuthorization on MapBifrost or MapBifrostAdmin), but the authorization services are not registered, {Consequence}. "
                + "Call builder.Services.AddAuthorization() and set up authentication (builder.Services.AddAuthentication(...)), or remove RequireAuthorization.");
        }

        AuthorizationPolicy? policy;
        try
        {
            policy = await AuthorizationPolicy.CombineAsync(policyProvider, authorizeData, policies).ConfigureAwait(false);
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidOperationException($"'{endpoint}' requires authorization, but its policy cannot be built ({ex.Message}), {Consequence}.", ex);
        }

        // IAuthenticationService is scoped: ask whether it is registered rather than resolve it from the root.
        if (services.GetService<IAuthenticationSchemeProvider>() is not { } schemes
            || services.GetService<IServiceProviderIsService>()?.IsService(typeof(IAuthenticationService)) == false)
        {
            throw new InvalidOperationException(
                $"'{endpoint}' requires authorization, but no authentication is set up: a caller could never be authenticated and refusing one needs an authentication scheme, {Consequence}. "
                + "Add one with builder.Services.AddAuthentication(\"scheme\").AddScheme<...>(...) (README \"Add it to your app\" shows an API-key scheme).");
        }

        if (policy is not { AuthenticationSchemes.Count: > 0 } && await schemes.GetDefaultChallengeSchemeAsync().ConfigureAwait(false) is null)
        {
            throw new InvalidOperationException(
                $"'{endpoint}' requires authorization, but there is no default authentication scheme to challenge an unauthenticated caller with, {Consequence}. "
                + "Name one: builder.Services.AddAuthentication(\"scheme\"), or set the policy's authentication schemes.");
        }
    }
}

/// <summary>The log messages of the hosting checks.</summary>
internal static partial class HostingLog
{
    [LoggerMessage(40, LogLevel.Warning, "Configuration key '{Key}' matches no Bifrost setting and is ignored (closest setting: {Closest}; see README \"Configuration reference\").")]
    public static partial void UnknownConfigurationKey(ILogger logger, string key, string closest);

    [LoggerMessage(41, LogLevel.Warning, "The configuration section '{Section}' given to AddBifrost is missing or empty: no provider, key or model is configured from it.")]
    public static partial void ConfigurationSectionEmpty(ILogger logger, string section);

    [LoggerMessage(42, LogLevel.Warning, "No Bifrost provider is configured (Bifrost:Providers is empty and none was added with AddProvider): every inference request will be answered 400 provider_not_found.")]
    public static partial void NoProvider(ILogger logger);

    [LoggerMessage(43, LogLevel.Error, "Request {Method} {Path} (request id {RequestId}) to a Bifrost endpoint failed in the host's pipeline before the gateway ran (for example: it requires authorization but app.UseAuthorization() is not between UseRouting and UseEndpoints); answered 500 host_error.")]
    public static partial void HostPipelineFailed(ILogger logger, string method, string path, string requestId, Exception exception);

    [LoggerMessage(45, LogLevel.Warning, "The Bifrost admin API is mapped at '{Prefix}' without any authorization: anyone who can reach it can create, read and delete virtual keys. Add .RequireAuthorization(...) to MapBifrostAdmin (README \"Admin API\").")]
    public static partial void AdminWithoutAuthorization(ILogger logger, string prefix);

    [LoggerMessage(44, LogLevel.Information, "Model '{Model}': '{Prefix}' is not a provider name, so the default provider '{Provider}' (which accepts any model) serves the model whole. Logged once per prefix.")]
    public static partial void ServedWholeByDefault(ILogger logger, string model, string prefix, string provider);
}
