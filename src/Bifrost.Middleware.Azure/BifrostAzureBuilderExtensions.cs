using Azure.Core;
using Azure.Identity;
using Bifrost.Middleware;
using Bifrost.Middleware.Azure;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Microsoft Entra ID authentication for Azure OpenAI providers.</summary>
public static class BifrostAzureBuilderExtensions
{
    /// <summary>
    /// Authenticates provider <paramref name="providerName"/> (type <c>azure</c>) with Entra ID through
    /// <see cref="DefaultAzureCredential"/> (environment variables, workload identity, managed identity, Azure CLI, ...):
    /// <c>Authorization: Bearer</c> instead of <c>api-key</c>, so the provider needs no <c>Keys</c>. The identity needs the
    /// role <c>Cognitive Services OpenAI User</c> on the resource.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="providerName">The provider's name under <c>Bifrost:Providers</c>.</param>
    /// <param name="configure">Changes the scope or the refresh margin.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseAzureEntraId(this IBifrostBuilder builder, string providerName, Action<AzureEntraIdOptions>? configure = null) =>
        Register(builder, providerName, static () => new DefaultAzureCredential(), configure);

    /// <summary>
    /// Authenticates provider <paramref name="providerName"/> (type <c>azure</c>) with Entra ID tokens from
    /// <paramref name="credential"/> (e.g. <c>ManagedIdentityCredential</c>, <c>WorkloadIdentityCredential</c>,
    /// <c>ClientSecretCredential</c>).
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="providerName">The provider's name under <c>Bifrost:Providers</c>.</param>
    /// <param name="credential">The credential tokens come from.</param>
    /// <param name="configure">Changes the scope or the refresh margin.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseAzureEntraId(this IBifrostBuilder builder, string providerName, TokenCredential credential, Action<AzureEntraIdOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(credential);
        return Register(builder, providerName, () => credential, configure);
    }

    private static IBifrostBuilder Register(IBifrostBuilder builder, string providerName, Func<TokenCredential> credential, Action<AzureEntraIdOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(providerName);
        var options = new AzureEntraIdOptions();
        configure?.Invoke(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Scope, nameof(configure));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RefreshBeforeExpiry, TimeSpan.Zero, nameof(configure));
        return builder.AddUpstreamAuthenticator(providerName, services => new EntraIdAuthenticator(
            credential(),
            options,
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            services.GetRequiredService<ILogger<EntraIdAuthenticator>>()));
    }
}
