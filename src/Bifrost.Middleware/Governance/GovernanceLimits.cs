using System.Collections.Frozen;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Bifrost.Middleware.Governance;

/// <summary>One budget or request/token limit on a call's path, with its (cached) scope string.</summary>
internal sealed class GovernanceLimit
{
    private GovernanceLimit(string scope, string label, string? provider)
    {
        Scope = scope;
        Label = label;
        Provider = provider;
    }

    public string Scope { get; }

    /// <summary>How errors name it: <c>Team 'research'</c>, <c>Virtual key 'a'</c>, <c>Provider config 'openai' of virtual key 'a'</c>.</summary>
    public string Label { get; }

    /// <summary>The provider of a key's provider config, else null.</summary>
    public string? Provider { get; }

    public bool IsBudget { get; private init; }

    public decimal MaxUsd { get; private init; }

    public GovernancePeriod Period { get; private init; }

    public bool CalendarAligned { get; private init; }

    public long? MaxRequests { get; private init; }

    public long? MaxTokens { get; private init; }

    public TimeSpan RatePeriod { get; private init; }

    public static GovernanceLimit? Budget(string scope, string label, string? provider, GovernanceBudgetOptions? options) =>
        options is { MaxUsd: { } max } && GovernancePeriod.TryParse(options.Reset, out var period)
            ? new GovernanceLimit(scope, label, provider) { IsBudget = true, MaxUsd = max, Period = period, CalendarAligned = options.CalendarAligned }
            : null;

    public static GovernanceLimit? Rate(string scope, string label, string? provider, GovernanceRateLimitOptions? options) =>
        options is not null && (options.Requests is not null || options.Tokens is not null) && RateLimitPeriod.TryParse(options.Period, out var period)
            ? new GovernanceLimit(scope, label, provider) { MaxRequests = options.Requests, MaxTokens = options.Tokens, RatePeriod = period }
            : null;

    // The window last computed (windows tile time: while now is inside it, it is the window at now). Replaced as a whole
    // (one reference) when the window moves, so concurrent readers see a consistent pair.
    private Window? _current;

    public (DateTimeOffset Start, DateTimeOffset End) WindowAt(DateTimeOffset now)
    {
        if (_current is { } current && now >= current.Start && now < current.End)
        {
            return (current.Start, current.End);
        }

        var window = IsBudget ? Period.WindowAt(now, CalendarAligned) : GovernancePeriod.RateWindowAt(now, RatePeriod);
        _current = new Window(window.Start, window.End);
        return window;
    }

    private sealed record Window(DateTimeOffset Start, DateTimeOffset End);

    public GovernanceCounterCheck Check(DateTimeOffset now, long reservedTokens, decimal reservedCost)
    {
        var (start, end) = WindowAt(now);
        return IsBudget
            ? new GovernanceCounterCheck(Scope, start, end, null, null, MaxUsd, reservedTokens, reservedCost)
            : new GovernanceCounterCheck(Scope, start, end, MaxRequests, MaxTokens, null, reservedTokens, reservedCost);
    }

    /// <summary>The refusal of a call by this limit: 402 <c>budget_exceeded</c>, or 429 with Retry-After until the window's end.</summary>
    public BifrostException Refusal(GovernanceCounts counts, DateTimeOffset windowEnd, DateTimeOffset now)
    {
        if (IsBudget)
        {
            var per = Period.IsLifetime ? "lifetime budget" : $"budget per {Period}";
            return BifrostException.Gateway(402, "budget_exceeded", "budget_exceeded", string.Create(CultureInfo.InvariantCulture, $"{Label} spent ${counts.CostUsd:0.00####} of its ${MaxUsd:0.00####} {per}."), Scope);
        }

        var retryAfter = windowEnd - now;
        return MaxTokens is { } tokens && counts.Tokens >= tokens
            ? GovernanceRateLimiter.Refused("token_limited", "token_limit_exceeded", $"{Label} used {counts.Tokens} of its {tokens} tokens per {RatePeriod}.", retryAfter)
            : GovernanceRateLimiter.Refused("request_limited", "request_limit_exceeded", $"{Label} made {counts.Requests} of its {MaxRequests} requests per {RatePeriod}.", retryAfter);
    }
}

/// <summary>
/// A virtual key's limits, built once per key: the budgets and limits every call of the key passes (customer → team →
/// key), and those of each of its provider configs. Cached per <see cref="VirtualKey"/> instance.
/// </summary>
internal sealed class KeyLimits
{
    private static readonly ConditionalWeakTable<VirtualKey, KeyLimits> Cache = [];

    private readonly FrozenDictionary<string, GovernanceLimit[]> _paths;

    private KeyLimits(string keyId, GovernanceLimit[] common, FrozenDictionary<string, GovernanceLimit[]> providers)
    {
        KeyId = keyId;
        Common = common;
        Providers = providers;
        _paths = providers.ToFrozenDictionary(static p => p.Key, p => (GovernanceLimit[])[.. common, .. p.Value], StringComparer.OrdinalIgnoreCase);
        IsEmpty = common.Length == 0 && providers.Count == 0;
        NeedsEstimate = common.Concat(providers.Values.SelectMany(static p => p)).Any(static l => l.IsBudget || l.MaxTokens is not null);
    }

    /// <summary>The id of the key these limits belong to.</summary>
    public string KeyId { get; }

    public GovernanceLimit[] Common { get; }

    public FrozenDictionary<string, GovernanceLimit[]> Providers { get; }

    public bool IsEmpty { get; }

    /// <summary>Whether a budget or a token limit is on the path (the call's input estimate is then reserved).</summary>
    public bool NeedsEstimate { get; }

    /// <summary>The common limits followed by those of <paramref name="provider"/>'s config (cached).</summary>
    public GovernanceLimit[] PathFor(string provider) => _paths.TryGetValue(provider, out var path) ? path : Common;

    public GovernanceLimit[] ForProvider(string? provider) => provider is not null && Providers.TryGetValue(provider, out var limits) ? limits : [];

    public static KeyLimits Of(VirtualKey key, VirtualKeyStore store) =>
        Cache.TryGetValue(key, out var limits) ? limits : BuildCached(key, store);

    // Apart from Of, so the lambda's closure is allocated only when the limits are built, not on every call.
    private static KeyLimits BuildCached(VirtualKey key, VirtualKeyStore store) => Cache.GetValue(key, k => Build(k, store));

    private static KeyLimits Build(VirtualKey key, VirtualKeyStore store)
    {
        var common = new List<GovernanceLimit>(4);
        if (key.Customer is { } customer && store.FindCustomer(customer)?.Budget is { } customerBudget)
        {
            Add(common, GovernanceLimit.Budget(GovernanceScopes.BudgetCustomer + customer, $"Customer '{customer}'", null, customerBudget));
        }

        if (key.Team is { } team && store.FindTeam(team)?.Budget is { } teamBudget)
        {
            Add(common, GovernanceLimit.Budget(GovernanceScopes.BudgetTeam + team, $"Team '{team}'", null, teamBudget));
        }

        Add(common, GovernanceLimit.Budget(GovernanceScopes.BudgetKey + key.Id, $"Virtual key '{key.Id}'", null, key.Budget));
        Add(common, GovernanceLimit.Rate(GovernanceScopes.RateKey + key.Id, $"Virtual key '{key.Id}'", null, RateOptions(key.RateLimits)));

        var providers = new Dictionary<string, GovernanceLimit[]>(StringComparer.OrdinalIgnoreCase);
        foreach (var (provider, config) in key.Providers)
        {
            var limits = new List<GovernanceLimit>(2);
            var label = $"Provider config '{provider}' of virtual key '{key.Id}'";
            Add(limits, GovernanceLimit.Budget(GovernanceScopes.BudgetKey + key.Id + GovernanceScopes.ProviderInfix + provider, label, provider, config.Budget));
            Add(limits, GovernanceLimit.Rate(GovernanceScopes.RateKey + key.Id + GovernanceScopes.ProviderInfix + provider, label, provider, config.RateLimits));
            if (limits.Count > 0)
            {
                providers[provider] = [.. limits];
            }
        }

        return new KeyLimits(key.Id, [.. common], providers.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase));
    }

    private static GovernanceRateLimitOptions? RateOptions(KeyRateLimits? limits) =>
        limits is null ? null : new GovernanceRateLimitOptions { Requests = limits.Requests, Tokens = limits.Tokens, Period = limits.Period.ToString("c", CultureInfo.InvariantCulture) };

    private static void Add(List<GovernanceLimit> list, GovernanceLimit? limit)
    {
        if (limit is not null)
        {
            list.Add(limit);
        }
    }
}
