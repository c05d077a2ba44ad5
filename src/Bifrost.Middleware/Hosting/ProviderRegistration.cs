namespace Bifrost.Middleware.Hosting;

/// <summary>A provider registered in code by name (<c>AddProvider</c>): its own type, whatever its configuration says.</summary>
internal sealed class ProviderRegistration(string name, IProviderType type)
{
    public string Name { get; } = name;

    public IProviderType Type { get; } = type;
}

/// <summary>The name an <see cref="IUpstreamAuthenticator"/> was registered under (its DI key), found ignoring case.</summary>
internal sealed class UpstreamAuthenticatorRegistration(string providerName)
{
    public string ProviderName { get; } = providerName;

    /// <summary>The authenticator of provider <paramref name="name"/> (the last registered for it, names compared ignoring case), or null.</summary>
    public static IUpstreamAuthenticator? Find(IServiceProvider services, string name)
    {
        var key = services.GetServices<UpstreamAuthenticatorRegistration>().LastOrDefault(r => string.Equals(r.ProviderName, name, StringComparison.OrdinalIgnoreCase))?.ProviderName;
        return key is null ? null : services.GetKeyedService<IUpstreamAuthenticator>(key);
    }
}

/// <summary>
/// The provider types by name (built-in and <c>AddProviderType</c>; for one name the last registered wins) and the providers
/// registered by name (<c>AddProvider</c>; likewise). Which type serves a configured provider: its registration by name, else
/// its <c>Type</c>, else the type named like the provider (unless that type is only chosen explicitly, as the presets), else <c>openai</c>.
/// </summary>
internal sealed class ProviderRegistrations(IEnumerable<IProviderType> types, IEnumerable<ProviderRegistration> registrations)
{
    /// <summary>The type of a provider configured without <c>Type</c> and not named like a type.</summary>
    public const string DefaultType = "openai";

    private readonly Dictionary<string, IProviderType> _types = LastByName(types, static t => t.Name);
    private readonly Dictionary<string, ProviderRegistration> _byName = LastByName(registrations, static r => r.Name);

    /// <summary>The providers registered by name.</summary>
    public IEnumerable<string> Names => _byName.Keys;

    /// <summary>The known type names, sorted.</summary>
    public IEnumerable<string> TypeNames => _types.Keys.Order(StringComparer.OrdinalIgnoreCase);

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The type serving provider <paramref name="name"/>, or null when its configured <c>Type</c> is unknown.</summary>
    public IProviderType? Resolve(string name, ProviderOptions options)
    {
        if (_byName.TryGetValue(name, out var registration))
        {
            return registration.Type;
        }

        if (!string.IsNullOrWhiteSpace(options.Type))
        {
            return _types.GetValueOrDefault(options.Type.Trim());
        }

        return (_types.TryGetValue(name, out var named) && named.ImpliedByProviderName ? named : null) ?? _types.GetValueOrDefault(DefaultType);
    }

    private static Dictionary<string, T> LastByName<T>(IEnumerable<T> items, Func<T, string> name)
    {
        var byName = new Dictionary<string, T>(StringComparer.OrdinalIgnoreCase);
        foreach (var item in items)
        {
            byName[name(item)] = item; // the last registration of a name wins
        }

        return byName;
    }
}
