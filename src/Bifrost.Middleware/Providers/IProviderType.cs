using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers;

/// <summary>
/// A provider type: the name <c>Providers:&lt;name&gt;:Type</c> selects, how the adapter serving such providers is made,
/// and what the type requires of a provider's options. Built-in types (<c>openai</c>, <c>anthropic</c>, <c>azure</c>,
/// <c>local</c>, <c>chatclient</c>) are registered with <c>TryAddEnumerable</c>, one class each; user types (<c>AddProviderType</c>) and
/// named providers (<c>AddProvider</c>) the same way, so the registry finds every adapter by name, never by a type switch.
/// </summary>
internal interface IProviderType
{
    /// <summary>The type name (compared ignoring case).</summary>
    string Name { get; }

    /// <summary>The adapter for provider <paramref name="providerName"/> (usually one singleton serving every provider of the type).</summary>
    IProviderAdapter CreateAdapter(IServiceProvider services, string providerName);

    /// <summary>
    /// Whether a provider configured without <c>Type</c> but named like this type gets it (true, the default: a provider named
    /// <c>anthropic</c> is Anthropic). The OpenAI-compatible presets say false: only <c>Type: groq</c> selects them.
    /// </summary>
    bool ImpliedByProviderName => true;

    /// <summary>
    /// Null (the default): the type works without <c>Keys</c>. Otherwise it needs a key or an <see cref="IUpstreamAuthenticator"/>
    /// registered for the provider, and this text says which credentials it takes (the start-up validation error names them).
    /// </summary>
    string? CredentialsRequired => null;

    /// <summary>Adds an error for each option this type requires and the provider lacks (<paramref name="prefix"/> names the provider's section).</summary>
    void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors)
    {
    }
}

/// <summary>A provider type whose adapter comes from a factory: user types, and the adapter of a provider registered by name.</summary>
internal sealed class ProviderType(string name, Func<IServiceProvider, string, IProviderAdapter> factory) : IProviderType
{
    public string Name { get; } = name;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => factory(services, providerName);
}

/// <summary>Checks shared by the HTTP provider types.</summary>
internal static class ProviderTypeChecks
{
    /// <summary>A BaseUrl, when set, must be an absolute http(s) URL.</summary>
    public static void HttpBaseUrl(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors)
    {
        if (!string.IsNullOrWhiteSpace(options.BaseUrl)
            && (!Uri.TryCreate(options.BaseUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
        {
            errors.AddError($"{prefix}:BaseUrl '{options.BaseUrl}' must be an absolute http(s) URL.");
        }
    }
}
