using Bifrost.Middleware.Hosting;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Configuration;

[OptionsValidator]
internal sealed partial class BifrostOptionsAttributeValidator : IValidateOptions<BifrostOptions>;

[OptionsValidator]
internal sealed partial class ProviderOptionsAttributeValidator : IValidateOptions<ProviderOptions>;

/// <summary>Cross-field checks the attributes cannot express: provider types, URLs, keys, the default provider.</summary>
internal sealed class BifrostOptionsValidator(ProviderRegistrations registrations, IEnumerable<UpstreamAuthenticatorRegistration> authenticators) : IValidateOptions<BifrostOptions>
{
    private readonly BifrostOptionsAttributeValidator _attributes = new();
    private readonly ProviderOptionsAttributeValidator _providerAttributes = new();

    public ValidateOptionsResult Validate(string? name, BifrostOptions options)
    {
        var builder = new ValidateOptionsResultBuilder();
        builder.AddResult(_attributes.Validate(name, options));
        if (options.Telemetry is { } telemetry && (telemetry.BatchLineSpans < 0 || telemetry.BatchFailureEvents < 0))
        {
            builder.AddError("Bifrost:Telemetry:BatchLineSpans and BatchFailureEvents must not be negative.");
        }

        foreach (var (providerName, provider) in options.Providers)
        {
            var prefix = $"Bifrost:Providers:{providerName}";
            if (string.IsNullOrWhiteSpace(providerName) || providerName.Contains('/', StringComparison.Ordinal))
            {
                builder.AddError($"Provider name '{providerName}' is invalid: it must be non-empty and must not contain '/'.");
                continue;
            }

            if (provider is null)
            {
                builder.AddError($"{prefix} is empty.");
                continue;
            }

            var result = _providerAttributes.Validate(providerName, provider);
            if (result.Failed)
            {
                foreach (var failure in result.Failures)
                {
                    builder.AddError($"{prefix}: {failure}");
                }
            }

            var type = registrations.Resolve(providerName, provider);
            if (type is null)
            {
                builder.AddError($"{prefix}:Type '{provider.Type}' is unknown. Known types: {string.Join(", ", registrations.TypeNames)}; register another with AddProviderType, or an adapter named '{providerName}' with AddProvider.");
            }
            else
            {
                type.Validate(prefix, provider, builder);
                if (type.CredentialsRequired is { } credentials && provider.Keys.Count == 0
                    && !authenticators.Any(a => string.Equals(a.ProviderName, providerName, StringComparison.OrdinalIgnoreCase)))
                {
                    builder.AddError($"{prefix} has no credentials: it needs {credentials.Replace("<provider>", providerName, StringComparison.Ordinal)}.");
                }
            }

            if (string.IsNullOrWhiteSpace(provider.AuthHeader))
            {
                builder.AddError($"{prefix}:AuthHeader must not be empty.");
            }

            if (provider.Keys.Count > 0 && provider.Keys.All(static k => k is null || k.Weight <= 0))
            {
                builder.AddError($"{prefix}:Keys: at least one key needs a weight above 0.");
            }

            for (var i = 0; i < provider.Keys.Count; i++)
            {
                var key = provider.Keys[i];
                if (key is null || string.IsNullOrWhiteSpace(key.Value))
                {
                    builder.AddError($"{prefix}:Keys:{i}:Value is required (a key, or env:VARIABLE).");
                }
                else if (key.Weight is < 0 or double.NaN or double.PositiveInfinity)
                {
                    builder.AddError($"{prefix}:Keys:{i}:Weight must be a finite number >= 0.");
                }
            }

            if (provider.RetryMaxDelay < provider.RetryBaseDelay)
            {
                builder.AddError($"{prefix}:RetryMaxDelay ({provider.RetryMaxDelay}) must not be below RetryBaseDelay ({provider.RetryBaseDelay}).");
            }
        }

        ValidatePricing(options, builder);
        Governance.GovernanceValidation.Validate(options.Governance, builder);
        Caching.ResponseCacheValidation.Validate(options.Cache, builder); // response cache (Caching/)
        AzureInboundOptions.Validate(options.AzureInbound, builder);

        if (options.Jobs is { } jobs && jobs.RetryMaxDelay < jobs.RetryBaseDelay)
        {
            builder.AddError($"Bifrost:Jobs:RetryMaxDelay ({jobs.RetryMaxDelay}) must not be below RetryBaseDelay ({jobs.RetryBaseDelay}).");
        }

        if (!string.IsNullOrEmpty(options.DefaultProvider)
            && !options.Providers.ContainsKey(options.DefaultProvider)
            && !registrations.Contains(options.DefaultProvider))
        {
            builder.AddError($"Bifrost:DefaultProvider '{options.DefaultProvider}' is not a configured provider. Configured: {string.Join(", ", options.Providers.Keys.Concat(registrations.Names).Distinct(StringComparer.OrdinalIgnoreCase))}.");
        }

        return builder.Build();
    }

    /// <summary><c>Bifrost:Pricing</c>: keys are <c>provider/model</c>, prices finite and not negative, discounts in [0, 1].</summary>
    private static void ValidatePricing(BifrostOptions options, ValidateOptionsResultBuilder builder)
    {
        foreach (var (key, price) in options.Pricing)
        {
            var prefix = $"Bifrost:Pricing:{key}";
            if (Governance.Pricing.PricingCatalog.Split(key) is null)
            {
                builder.AddError($"{prefix}: the key must be 'provider/model' (e.g. 'local/echo').");
                continue;
            }

            if (price is null)
            {
                builder.AddError($"{prefix} is empty.");
                continue;
            }

            Check(prefix, nameof(price.InputPerMillion), price.InputPerMillion, builder);
            Check(prefix, nameof(price.OutputPerMillion), price.OutputPerMillion, builder);
            Check(prefix, nameof(price.CachedInputPerMillion), price.CachedInputPerMillion, builder);
            Check(prefix, nameof(price.CacheWritePerMillion), price.CacheWritePerMillion, builder);
            Check(prefix, nameof(price.ReasoningPerMillion), price.ReasoningPerMillion, builder);
            if (price.BatchDiscount is < 0 or > 1 or double.NaN)
            {
                builder.AddError($"{prefix}:BatchDiscount ({price.BatchDiscount}) must be between 0 and 1.");
            }
        }

        static void Check(string prefix, string name, double? value, ValidateOptionsResultBuilder builder)
        {
            if (value is { } number && (number < 0 || !double.IsFinite(number)))
            {
                builder.AddError($"{prefix}:{name} ({number}) must be a finite number >= 0 (USD per million tokens).");
            }
        }
    }
}
