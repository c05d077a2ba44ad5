using System.Collections.Frozen;
using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Hosting;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Gateway;

/// <summary>The configured providers, resolved once at start: adapter, keys (env: resolved), allowed models.</summary>
internal sealed class ProviderRegistry
{
    private readonly FrozenDictionary<string, ProviderRuntime> _providers;
    private readonly FrozenDictionary<string, ProviderRuntime>.AlternateLookup<ReadOnlySpan<char>> _byName;
    private readonly ProviderRuntime? _default;
    private readonly ILogger<ProviderRegistry> _logger;

    /// <summary>The prefixes already logged as served whole by the default provider (bounded: a flood of distinct prefixes is not remembered beyond it).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _wholeModelPrefixes = new(StringComparer.Ordinal);
    private const int MaxLoggedPrefixes = 256;

    public ProviderRegistry(IOptions<BifrostOptions> options, ProviderRegistrations registrations, IServiceProvider services, ILogger<ProviderRegistry> logger)
    {
        _logger = logger;
        var value = options.Value;
        var runtimes = new Dictionary<string, ProviderRuntime>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, providerOptions) in value.Providers)
        {
            runtimes[name] = Create(name, providerOptions, registrations, services, logger);
        }

        foreach (var name in registrations.Names)
        {
            if (!runtimes.ContainsKey(name))
            {
                runtimes[name] = Create(name, new ProviderOptions(), registrations, services, logger);
            }
        }

        _providers = runtimes.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
        _byName = _providers.GetAlternateLookup<ReadOnlySpan<char>>();
        if (!string.IsNullOrEmpty(value.DefaultProvider))
        {
            _default = _providers.GetValueOrDefault(value.DefaultProvider);
        }
    }

    public IEnumerable<ProviderRuntime> Providers => _providers.Values;

    public ProviderRuntime? Default => _default;

    /// <summary>Splits <c>provider/model</c> and checks the provider and model; throws a 400 <see cref="BifrostException"/> otherwise.</summary>
    public ResolvedModel Resolve(string? model, string param)
    {
        if (string.IsNullOrWhiteSpace(model))
        {
            throw BifrostErrors.MissingParameter($"'{param}' is required: a model as 'provider/model'.", param);
        }

        ProviderRuntime? provider = null;
        string? bare = model;
        var slash = model.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0 && _byName.TryGetValue(model.AsSpan(0, slash), out var named))
        {
            provider = named;
            bare = null; // the part after the slash, taken below without a copy when it is an allowed model
        }
        else if (_default is not null && (slash <= 0 || _default.AllowedModels is null))
        {
            // A bare model, or a model id that itself contains '/' (e.g. "meta-llama/Llama-3.1-8B") on a default provider that accepts any model.
            provider = _default;
            if (slash > 0)
            {
                LogServedWhole(model, slash);
            }
        }

        if (provider is null)
        {
            var message = slash > 0
                ? $"Unknown provider '{model[..slash]}' in model '{model}'. Configured providers: {string.Join(", ", _providers.Keys)}."
                : $"Model '{model}' has no provider prefix and no default provider is configured. Use 'provider/model' (configured providers: {string.Join(", ", _providers.Keys)}).";
            throw BifrostErrors.InvalidRequest("provider_not_found", message, param);
        }

        var bareSpan = bare is null ? model.AsSpan(slash + 1) : bare.AsSpan();
        if (bareSpan.IsEmpty)
        {
            throw BifrostErrors.InvalidRequest("model_not_found", $"Model '{model}' names no model after the provider.", param);
        }

        if (provider.AllowedModels is { } allowed)
        {
            // The configured string itself is returned, so a routed request allocates no substring.
            if (provider.AllowedModelLookup.TryGetValue(bareSpan, out var configured))
            {
                return new ResolvedModel(provider, configured);
            }

            bare ??= bareSpan.ToString();

            throw BifrostErrors.InvalidRequest(
                "model_not_found",
                $"Model '{bare}' is not available on provider '{provider.Name}'. Available: {string.Join(", ", provider.Options.Models)}.",
                param);
        }

        return new ResolvedModel(provider, bare ?? bareSpan.ToString());
    }

    /// <summary>
    /// The model as the provider is asked for it (what <c>extra_fields.model_requested</c> reports): the part after a
    /// provider prefix, the whole string when the default provider takes it whole — and for a model that does not route,
    /// the part after the first <c>/</c> (as Bifrost splits <c>provider/model</c>). Null for a missing model.
    /// </summary>
    public string? BareModel(string? model)
    {
        if (string.IsNullOrWhiteSpace(model))
        {
            return null;
        }

        var slash = model.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || (!_byName.ContainsKey(model.AsSpan(0, slash)) && _default is { AllowedModels: null }))
        {
            return model;
        }

        return slash == model.Length - 1 ? model : model[(slash + 1)..];
    }

    /// <summary>Logs once per distinct prefix (up to <see cref="MaxLoggedPrefixes"/>) that a model was served whole by the catch-all default provider.</summary>
    private void LogServedWhole(string model, int slash)
    {
        var prefix = model.AsSpan(0, slash);
        var lookup = _wholeModelPrefixes.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.ContainsKey(prefix) || _wholeModelPrefixes.Count >= MaxLoggedPrefixes || !_logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        var name = prefix.ToString();
        if (_wholeModelPrefixes.TryAdd(name, 0))
        {
            HostingLog.ServedWholeByDefault(_logger, model, name, _default!.Name);
        }
    }

    private static ProviderRuntime Create(string name, ProviderOptions options, ProviderRegistrations registrations, IServiceProvider services, ILogger logger)
    {
        var type = registrations.Resolve(name, options)
            ?? throw new InvalidOperationException($"Provider '{name}' has an unknown type '{options.Type}'. Known types: {string.Join(", ", registrations.TypeNames)}.");
        var adapter = type.CreateAdapter(services, name);

        var keys = new List<ProviderKey>();
        foreach (var key in options.Keys)
        {
            if (key?.Value is null || key.Weight <= 0)
            {
                continue;
            }

            var value = key.Value;
            if (value.StartsWith("env:", StringComparison.OrdinalIgnoreCase))
            {
                var variable = value[4..];
                value = Environment.GetEnvironmentVariable(variable) ?? string.Empty;
                if (value.Length == 0)
                {
                    Log.KeyVariableMissing(logger, name, variable);
                    continue;
                }
            }

            keys.Add(new ProviderKey(key.Id, value, key.Weight, key.Models.Count == 0 ? null : key.Models.ToFrozenSet(StringComparer.Ordinal)));
        }

        return new ProviderRuntime(name, options, adapter, [.. keys]) { Authenticator = UpstreamAuthenticatorRegistration.Find(services, name) };
    }
}

internal readonly record struct ResolvedModel(ProviderRuntime Provider, string Model);

internal sealed record ProviderKey(string? Id, string Value, double Weight, FrozenSet<string>? Models)
{
    /// <summary>Never the secret (a record would print every property).</summary>
    public override string ToString() => $"ProviderKey {{ Id = {Id} }}";
}

/// <summary>A provider ready to serve: its adapter, options and usable keys.</summary>
internal sealed class ProviderRuntime
{
    private readonly ProviderKey[] _keys;
    private readonly double _totalWeight;

    public ProviderRuntime(string name, ProviderOptions options, IProviderAdapter adapter, ProviderKey[] keys)
    {
        Name = name;
        Options = options;
        Adapter = adapter;
        _keys = keys;
        _totalWeight = keys.Sum(static k => k.Weight);
        AllowedModels = options.Models.Count == 0 ? null : options.Models.ToFrozenSet(StringComparer.Ordinal);
        AllowedModelLookup = (AllowedModels ?? FrozenSet<string>.Empty.ToFrozenSet(StringComparer.Ordinal)).GetAlternateLookup<ReadOnlySpan<char>>();
        HasConfiguredKeys = options.Keys.Count > 0;
    }

    public string Name { get; }

    public ProviderOptions Options { get; }

    public IProviderAdapter Adapter { get; }

    /// <summary>The provider's upstream authenticator (keyed by provider name), if one is registered.</summary>
    public IUpstreamAuthenticator? Authenticator { get; init; }

    public FrozenSet<string>? AllowedModels { get; }

    /// <summary><see cref="AllowedModels"/> (empty when any model is allowed), searchable by span.</summary>
    public FrozenSet<string>.AlternateLookup<ReadOnlySpan<char>> AllowedModelLookup { get; }

    public bool HasConfiguredKeys { get; }

    public int KeyCount => _keys.Length;

    /// <summary>
    /// Picks a key by weighted random choice among the keys allowed for the model (among all keys for a provider-wide
    /// call such as the model list, whose model is empty); null when the provider has none.
    /// </summary>
    public ProviderKey? SelectKey(string model, Random random, IReadOnlySet<string>? allowedIds = null)
    {
        if (_keys.Length == 0)
        {
            return null;
        }

        if (allowedIds is not null)
        {
            // A virtual key restricted to some of this provider's keys (Governance:VirtualKeys:N:ProviderKeys).
            var allowed = _keys.Where(k => k.Id is not null && allowedIds.Contains(k.Id) && (model.Length == 0 || k.Models is null || k.Models.Contains(model))).ToArray();
            return allowed.Length == 0
                ? throw BifrostException.Gateway(403, "permission_error", "provider_key_not_allowed", $"The virtual key may not use any of provider '{Name}''s API keys allowed for model '{model}'.", "model")
                : Pick(allowed, allowed.Sum(static k => k.Weight), random);
        }

        if (model.Length == 0)
        {
            return Pick(_keys, _totalWeight, random);
        }

        if (_keys.Length == 1)
        {
            var only = _keys[0];
            return only.Models is null || only.Models.Contains(model) ? only : throw NoKey(model);
        }

        var anyRestricted = false;
        foreach (var key in _keys)
        {
            anyRestricted |= key.Models is not null;
        }

        if (!anyRestricted)
        {
            return Pick(_keys, _totalWeight, random);
        }

        var eligible = _keys.Where(k => k.Models is null || k.Models.Contains(model)).ToArray();
        if (eligible.Length == 0)
        {
            throw NoKey(model);
        }

        return Pick(eligible, eligible.Sum(static k => k.Weight), random);
    }

    /// <summary>Any usable key (for provider-wide calls such as native batches), or null when the provider has none.</summary>
    public string? SelectAnyKey(Random random) => _keys.Length == 0 ? null : Pick(_keys, _totalWeight, random).Value;

    private static ProviderKey Pick(ProviderKey[] keys, double total, Random random)
    {
        var point = random.NextDouble() * total;
        foreach (var key in keys)
        {
            point -= key.Weight;
            if (point < 0)
            {
                return key;
            }
        }

        return keys[^1];
    }

    private BifrostException NoKey(string model) =>
        BifrostErrors.InvalidRequest("no_key_for_model", $"Provider '{Name}' has no API key allowed for model '{model}'.", "model");
}
