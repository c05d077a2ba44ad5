namespace Bifrost.Middleware.Hosting;

/// <summary>A provider adapter registered in code (<c>AddProvider</c>), by provider name.</summary>
internal sealed class ProviderRegistration(string name, Func<IServiceProvider, IProviderAdapter> factory)
{
    public string Name { get; } = name;

    public Func<IServiceProvider, IProviderAdapter> Factory { get; } = factory;
}

internal sealed class ProviderRegistrations(IEnumerable<ProviderRegistration> registrations)
{
    private readonly Dictionary<string, ProviderRegistration> _byName = Build(registrations);

    public IEnumerable<string> Names => _byName.Keys;

    public bool Contains(string name) => _byName.ContainsKey(name);

    public ProviderRegistration? Find(string name) => _byName.GetValueOrDefault(name);

    private static Dictionary<string, ProviderRegistration> Build(IEnumerable<ProviderRegistration> registrations)
    {
        var byName = new Dictionary<string, ProviderRegistration>(StringComparer.OrdinalIgnoreCase);
        foreach (var registration in registrations)
        {
            byName[registration.Name] = registration; // the last registration of a name wins
        }

        return byName;
    }
}

internal static class ProviderKinds
{
    public const string OpenAI = "openai";
    public const string Local = "local";
    public const string Anthropic = "anthropic";
    public const string Custom = "custom";

    /// <summary>Which adapter serves a configured provider: a registered one, or a built-in by Type (or by name when Type is empty).</summary>
    public static string? Resolve(string name, ProviderOptions options, ProviderRegistrations registrations)
    {
        if (registrations.Contains(name))
        {
            return Custom;
        }

        var type = string.IsNullOrWhiteSpace(options.Type)
            ? (string.Equals(name, Local, StringComparison.OrdinalIgnoreCase) ? Local : string.Equals(name, Anthropic, StringComparison.OrdinalIgnoreCase) ? Anthropic : OpenAI)
            : options.Type.Trim();

        if (string.Equals(type, OpenAI, StringComparison.OrdinalIgnoreCase) || string.Equals(type, "openai-compatible", StringComparison.OrdinalIgnoreCase))
        {
            return OpenAI;
        }

        if (string.Equals(type, Anthropic, StringComparison.OrdinalIgnoreCase))
        {
            return Anthropic;
        }

        return string.Equals(type, Local, StringComparison.OrdinalIgnoreCase) ? Local : null;
    }
}
