using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Caching;

/// <summary>The start-time checks of <c>Bifrost:Cache</c> the attributes cannot express (a wrong value stops the host naming it).</summary>
internal static class ResponseCacheValidation
{
    private const string Section = "Bifrost:Cache";

    public static void Validate(ResponseCacheOptions? options, ValidateOptionsResultBuilder builder)
    {
        if (options is null)
        {
            builder.AddError($"{Section} is empty.");
            return;
        }

        if (options.MaxTtl < options.Ttl)
        {
            builder.AddError($"{Section}:MaxTtl ({options.MaxTtl}) must not be below Ttl ({options.Ttl}).");
        }

        if (options.DefaultCacheKey is { } key && string.IsNullOrWhiteSpace(key))
        {
            builder.AddError($"{Section}:DefaultCacheKey must not be blank: leave it out so that only requests with x-bf-cache-key are cached.");
        }

        if (options.Semantic is { } semantic && (semantic.Enabled || options.Rules.Any(static r => r?.Semantic == true)))
        {
            var model = semantic.EmbeddingModel?.Trim();
            var slash = model?.IndexOf('/', StringComparison.Ordinal) ?? -1;
            if (string.IsNullOrEmpty(model) || slash <= 0 || slash == model.Length - 1)
            {
                builder.AddError($"{Section}:Semantic:EmbeddingModel '{semantic.EmbeddingModel}' must be 'provider/model' (an embedding model of a configured provider) when the semantic cache is on.");
            }
        }

        for (var i = 0; i < options.Rules.Count; i++)
        {
            var at = $"{Section}:Rules:{i}";
            var rule = options.Rules[i];
            if (rule is null)
            {
                builder.AddError($"{at} is empty.");
                continue;
            }

            var match = rule.Match?.Trim();
            var slash = match?.IndexOf('/', StringComparison.Ordinal) ?? -1;
            if (string.IsNullOrEmpty(match) || (match != "*" && (slash <= 0 || slash == match.Length - 1 || match.IndexOf('*', StringComparison.Ordinal) is var star && star >= 0 && (star != match.Length - 1 || star != slash + 1))))
            {
                builder.AddError($"{at}:Match '{rule.Match}' must be 'provider/model', 'provider/*' or '*'.");
            }

            if (rule.Ttl is { } ttl && ttl > options.MaxTtl)
            {
                builder.AddError($"{at}:Ttl ({ttl}) must not exceed {Section}:MaxTtl ({options.MaxTtl}).");
            }
        }
    }
}
