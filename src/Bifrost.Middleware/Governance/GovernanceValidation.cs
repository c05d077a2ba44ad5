using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Governance;

/// <summary>Start-time checks of <c>Bifrost:Governance</c>.</summary>
internal static class GovernanceValidation
{
    public const string Prefix = "sk-bf-";

    /// <summary>The plaintext of a configured <c>Value</c> (<c>env:NAME</c> read from the environment), or null.</summary>
    public static string? Secret(string? value) =>
        value is null ? null
        : value.StartsWith("env:", StringComparison.OrdinalIgnoreCase) ? Environment.GetEnvironmentVariable(value[4..]) is { Length: > 0 } read ? read.Trim() : null
        : value.Trim();

    public static void Validate(GovernanceOptions? options, ValidateOptionsResultBuilder builder)
    {
        if (options is null)
        {
            return;
        }

        const string Section = "Bifrost:Governance";
        if (!Enum.IsDefined(options.Mode))
        {
            builder.AddError($"{Section}:Mode '{options.Mode}' is unknown: use Off, Optional or Required.");
        }

        if (options.RefreshInterval <= TimeSpan.Zero || options.RefreshInterval > TimeSpan.FromDays(1))
        {
            builder.AddError($"{Section}:RefreshInterval '{options.RefreshInterval}' must be positive and at most a day (e.g. 00:00:05).");
        }

        var teams = Ids(options.Teams, $"{Section}:Teams", builder);
        var customers = Ids(options.Customers, $"{Section}:Customers", builder);
        for (var i = 0; i < options.Teams.Count; i++)
        {
            ValidateBudget(options.Teams[i]?.Budget, $"{Section}:Teams:{i}:Budget", builder);
        }

        for (var i = 0; i < options.Customers.Count; i++)
        {
            ValidateBudget(options.Customers[i]?.Budget, $"{Section}:Customers:{i}:Budget", builder);
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < options.VirtualKeys.Count; i++)
        {
            var key = options.VirtualKeys[i];
            var at = $"{Section}:VirtualKeys:{i}";
            if (key is null)
            {
                builder.AddError($"{at} is empty.");
                continue;
            }

            if (string.IsNullOrWhiteSpace(key.Id))
            {
                builder.AddError($"{at}:Id is required.");
            }
            else if (!ids.Add(key.Id))
            {
                builder.AddError($"{at}:Id '{key.Id}' is used by another virtual key.");
            }

            string? hash = null;
            var hasValue = !string.IsNullOrWhiteSpace(key.Value);
            var hasHash = !string.IsNullOrWhiteSpace(key.ValueHash);
            if (hasValue == hasHash)
            {
                builder.AddError($"{at}: set exactly one of Value (sk-bf-..., or env:NAME) and ValueHash (hex SHA-256).");
            }
            else if (hasValue)
            {
                var secret = Secret(key.Value);
                if (secret is null)
                {
                    builder.AddError($"{at}:Value reads the environment variable '{key.Value![4..]}', which is not set.");
                }
                else if (!secret.StartsWith(Prefix, StringComparison.Ordinal) || secret.Length <= Prefix.Length)
                {
                    builder.AddError($"{at}:Value must start with '{Prefix}' (callers send it in x-bf-vk or as a bearer token).");
                }
                else
                {
                    hash = Governance.VirtualKey.HashOf(secret);
                }
            }
            else
            {
                var given = key.ValueHash!.Trim();
                if (given.Length != 64 || !given.All(char.IsAsciiHexDigit))
                {
                    builder.AddError($"{at}:ValueHash must be the SHA-256 of the key as 64 hex digits.");
                }
                else
                {
                    hash = given.ToLowerInvariant();
                }
            }

            if (hash is not null)
            {
                if (hashes.TryGetValue(hash, out var other))
                {
                    builder.AddError($"{at}: its value is the same as virtual key '{other}''s.");
                }
                else
                {
                    hashes[hash] = key.Id ?? i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
            }

            if (key.Team is not null && key.Customer is not null)
            {
                builder.AddError($"{at}: set Team or Customer, not both.");
            }

            if (key.Team is not null && !teams.Contains(key.Team))
            {
                builder.AddError($"{at}:Team '{key.Team}' is not in {Section}:Teams.");
            }

            if (key.Customer is not null && !customers.Contains(key.Customer))
            {
                builder.AddError($"{at}:Customer '{key.Customer}' is not in {Section}:Customers.");
            }

            ValidateRateLimits(key.RateLimits, $"{at}:RateLimits", builder);
            ValidateBudget(key.Budget, $"{at}:Budget", builder);
            foreach (var (provider, config) in key.Providers)
            {
                if (config is null)
                {
                    continue;
                }

                ValidateBudget(config.Budget, $"{at}:Providers:{provider}:Budget", builder);
                ValidateRateLimits(config.RateLimits, $"{at}:Providers:{provider}:RateLimits", builder);
                if (config.RateLimits?.Concurrent is not null)
                {
                    builder.AddError($"{at}:Providers:{provider}:RateLimits:Concurrent is not supported per provider: set it on the key's RateLimits.");
                }
            }

            for (var m = 0; m < key.AllowedModels.Count; m++)
            {
                if (!Glob.IsValid(key.AllowedModels[m]))
                {
                    builder.AddError($"{at}:AllowedModels:{m} '{key.AllowedModels[m]}' is not a valid model pattern: use provider/model, with '*' as a wildcard (local/*, openai/gpt-4o*), or '*'.");
                }
            }
        }
    }

    private static void ValidateRateLimits(GovernanceRateLimitOptions? limits, string at, ValidateOptionsResultBuilder builder)
    {
        if (limits is null)
        {
            return;
        }

        if (limits.Requests is <= 0)
        {
            builder.AddError($"{at}:Requests must be positive.");
        }

        if (limits.Tokens is <= 0)
        {
            builder.AddError($"{at}:Tokens must be positive.");
        }

        if (limits.Concurrent is <= 0)
        {
            builder.AddError($"{at}:Concurrent must be positive.");
        }

        if (limits.Period is not null && !RateLimitPeriod.TryParse(limits.Period, out _))
        {
            builder.AddError($"{at}:Period '{limits.Period}' is not a period: use 30s, 1m, 1h, 1d, 1w or a TimeSpan (00:01:00).");
        }
        else if (limits.Period is null && (limits.Requests is not null || limits.Tokens is not null))
        {
            builder.AddError($"{at}:Period is required with Requests or Tokens (1m, 1h, 1d, ...).");
        }
    }

    private static void ValidateBudget(GovernanceBudgetOptions? budget, string at, ValidateOptionsResultBuilder builder)
    {
        if (budget is null)
        {
            return;
        }

        if (budget.MaxUsd is not > 0)
        {
            builder.AddError($"{at}:MaxUsd must be positive (USD per period).");
        }

        if (!GovernancePeriod.TryParse(budget.Reset, out _))
        {
            builder.AddError($"{at}:Reset '{budget.Reset}' is not a period: use N of m (minutes), h, d, w, M (months) or Y (years), e.g. 1d, 6h, 1M; none for a lifetime budget.");
        }
    }

    private static HashSet<string> Ids(IList<GovernanceGroupOptions> groups, string at, ValidateOptionsResultBuilder builder)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < groups.Count; i++)
        {
            if (groups[i]?.Id is not { Length: > 0 } id)
            {
                builder.AddError($"{at}:{i}:Id is required.");
            }
            else if (!ids.Add(id))
            {
                builder.AddError($"{at}:{i}:Id '{id}' is used twice.");
            }
        }

        return ids;
    }
}
