using System.Collections.Frozen;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Operations;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Governance.Pricing;

/// <summary>
/// Prices of models: the embedded list (<see cref="EmbeddedPrices"/>) with <c>Bifrost:Pricing</c> added on top, looked up
/// by provider name (then by the provider's type, so a provider named <c>work-openai</c> of type <c>openai</c> is priced
/// as OpenAI; a provider of type <c>azure</c> without an entry of its own is priced as OpenAI's model of the same name) and
/// model (a dated id matches its family). The one cost step: the attempt loop fills
/// <c>extra_fields.cost</c> with it, and governance (budgets) reads the same numbers. Lookups allocate nothing.
/// </summary>
internal sealed class PricingCatalog
{
    private readonly FrozenDictionary<string, FrozenDictionary<string, ModelPrice>> _providers;
    private readonly FrozenDictionary<string, string> _typeOfProvider;

    public PricingCatalog(IOptions<BifrostOptions> options)
        : this(options.Value)
    {
    }

    internal PricingCatalog(BifrostOptions options)
    {
        var providers = new Dictionary<string, Dictionary<string, ModelPrice>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (provider, model, price) in EmbeddedPrices.All)
        {
            Add(providers, provider, model, price);
        }

        foreach (var (key, entry) in options.Pricing)
        {
            if (entry is not null && Split(key) is var (provider, model))
            {
                Add(providers, provider, model, ModelPrice.From(entry));
            }
        }

        _providers = providers.ToFrozenDictionary(static p => p.Key, static p => p.Value.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase), StringComparer.OrdinalIgnoreCase);
        _typeOfProvider = options.Providers
            .Where(static p => !string.IsNullOrEmpty(p.Value?.Type) && !string.Equals(p.Key, p.Value.Type, StringComparison.OrdinalIgnoreCase))
            .ToFrozenDictionary(static p => p.Key, static p => p.Value.Type!, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The price of a model served by a provider, or null when it is unknown (then nothing is charged or reported).</summary>
    public ModelPrice? Find(string? provider, string? model)
    {
        if (string.IsNullOrEmpty(provider) || string.IsNullOrEmpty(model))
        {
            return null;
        }

        if (_providers.TryGetValue(provider, out var models) && FindModel(models, model) is { } price)
        {
            return price;
        }

        var type = _typeOfProvider.TryGetValue(provider, out var configured) ? configured : provider;
        if (!ReferenceEquals(type, provider) && _providers.TryGetValue(type, out models) && FindModel(models, model) is { } byType)
        {
            return byType;
        }

        // Azure OpenAI's models are OpenAI's: an azure provider without its own entry is priced at OpenAI's list price
        // (Azure's Global deployments; Data Zone and Regional deployments cost more — add them under Pricing:azure/<model>).
        return string.Equals(type, Providers.Azure.AzureProviderType.TypeName, StringComparison.OrdinalIgnoreCase) && _providers.TryGetValue("openai", out models)
            ? FindModel(models, model)
            : null;
    }

    public ModelPrice? Find(ResolvedModel target) => Find(target.Provider.Name, target.Model);

    /// <summary>The USD cost of an answer's tokens, or null when the model's price or the usage is unknown.</summary>
    public double? Cost(string? provider, string? model, TokenCounts? tokens, bool batch = false) =>
        tokens is { } counts && Find(provider, model) is { } price ? price.Cost(counts, batch) : null;

    /// <summary>Splits a <c>Bifrost:Pricing</c> key into provider and model (null when it is not <c>provider/model</c>).</summary>
    internal static (string Provider, string Model)? Split(string? key)
    {
        var slash = key?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        return slash > 0 && slash < key!.Length - 1 ? (key[..slash], key[(slash + 1)..]) : null;
    }

    private static void Add(Dictionary<string, Dictionary<string, ModelPrice>> providers, string provider, string model, ModelPrice price)
    {
        if (!providers.TryGetValue(provider, out var models))
        {
            providers[provider] = models = new Dictionary<string, ModelPrice>(StringComparer.OrdinalIgnoreCase);
        }

        models[model] = price;
    }

    /// <summary>The model's entry, or its family's: <c>-YYYY-MM-DD</c> (OpenAI), <c>-YYYYMMDD</c> (Anthropic) or <c>@YYYYMMDD</c> (Vertex) removed.</summary>
    private static ModelPrice? FindModel(FrozenDictionary<string, ModelPrice> models, string model)
    {
        if (models.TryGetValue(model, out var price))
        {
            return price;
        }

        var family = FamilyOf(model);
        return family.Length < model.Length && models.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(family, out price) ? price : null;
    }

    internal static ReadOnlySpan<char> FamilyOf(ReadOnlySpan<char> model)
    {
        // gpt-4o-mini-2024-07-18
        if (model.Length > 11 && model[^11] == '-' && model[^6] == '-' && model[^3] == '-'
            && IsDigits(model[^10..^6]) && IsDigits(model[^5..^3]) && IsDigits(model[^2..]))
        {
            return model[..^11];
        }

        // claude-haiku-4-5-20251001, and Vertex's claude-haiku-4-5@20251001 (gaps)
        return model.Length > 9 && model[^9] is ('-' or '@') && IsDigits(model[^8..]) ? model[..^9] : model;

        static bool IsDigits(ReadOnlySpan<char> span) => !span.ContainsAnyExceptInRange('0', '9');
    }
}
