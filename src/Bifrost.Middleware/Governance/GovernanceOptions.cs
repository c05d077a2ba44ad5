namespace Bifrost.Middleware;

/// <summary>Whether callers must present a virtual key.</summary>
public enum GovernanceMode
{
    /// <summary>No governance: virtual keys are not read and the governance layer is not in the pipeline (the default).</summary>
    Off = 0,

    /// <summary>A virtual key is optional: calls without one pass as before; calls with one get its rules (an unknown key is refused).</summary>
    Optional = 1,

    /// <summary>Every HTTP call to the gateway needs a valid virtual key (else 401 <c>virtual_key_required</c>).</summary>
    Required = 2,
}

/// <summary>Governance options (<c>Bifrost:Governance</c>): the mode, virtual keys, teams and customers.</summary>
public sealed class GovernanceOptions
{
    /// <summary>The mode. Default <see cref="GovernanceMode.Off"/>.</summary>
    public GovernanceMode Mode { get; set; }

    /// <summary>The virtual keys callers present (<c>x-bf-vk</c>, or <c>sk-bf-...</c> in <c>Authorization: Bearer</c>, <c>x-api-key</c>, <c>api-key</c>).</summary>
    public IList<VirtualKeyOptions> VirtualKeys { get; set; } = [];

    /// <summary>Teams keys may belong to.</summary>
    public IList<GovernanceGroupOptions> Teams { get; set; } = [];

    /// <summary>Customers keys may belong to.</summary>
    public IList<GovernanceGroupOptions> Customers { get; set; } = [];

    /// <summary>
    /// How often each instance checks the governance store for keys, teams and customers changed through the admin API
    /// (<c>MapBifrostAdmin</c>) on any instance, and reloads them when they changed. Default 5 seconds; a change made
    /// through this instance's admin API applies here at once.
    /// </summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>A virtual key: an id, its secret (plaintext or SHA-256), and what it may use.</summary>
public sealed class VirtualKeyOptions
{
    /// <summary>The key's id (unique; jobs, files and batches it creates are owned by <c>vk:&lt;id&gt;</c>).</summary>
    public string? Id { get; set; }

    /// <summary>The secret, starting with <c>sk-bf-</c>, or <c>env:NAME</c> to read it from an environment variable. Hashed at start; the plaintext is not kept.</summary>
    public string? Value { get; set; }

    /// <summary>The SHA-256 of the secret (hex), for configurations that should not hold the plaintext. Instead of <see cref="Value"/>.</summary>
    public string? ValueHash { get; set; }

    /// <summary>A display name.</summary>
    public string? Name { get; set; }

    /// <summary>Whether the key may be used. Default true; false answers 401 <c>virtual_key_inactive</c>.</summary>
    public bool Active { get; set; } = true;

    /// <summary>When the key stops working (401 <c>virtual_key_expired</c> from then on). Default: never.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>Providers the key may use. Empty: all.</summary>
    public IList<string> AllowedProviders { get; set; } = [];

    /// <summary>Models the key may use, as <c>provider/model</c> or globs with <c>*</c> (<c>local/*</c>, <c>openai/gpt-4o*</c>). Empty: all.</summary>
    public IList<string> AllowedModels { get; set; } = [];

    /// <summary>Per provider, the ids of the provider's keys (<see cref="ProviderKeyOptions.Id"/>) this virtual key may use. Empty: all.</summary>
    public IDictionary<string, IList<string>> ProviderKeys { get; set; } = new Dictionary<string, IList<string>>(StringComparer.OrdinalIgnoreCase);

    /// <summary>The team the key belongs to (exclusive with <see cref="Customer"/>).</summary>
    public string? Team { get; set; }

    /// <summary>The customer the key belongs to (exclusive with <see cref="Team"/>).</summary>
    public string? Customer { get; set; }

    /// <summary>The key's budget (402 <c>budget_exceeded</c> once its spend in the period reaches it).</summary>
    public GovernanceBudgetOptions? Budget { get; set; }

    /// <summary>The key's rate limits (429 with Retry-After when exceeded).</summary>
    public GovernanceRateLimitOptions? RateLimits { get; set; }

    /// <summary>Per provider (its configured name), a budget and rate limits of this key's use of that provider, checked after the key's own (Bifrost's provider configs).</summary>
    public IDictionary<string, VirtualKeyProviderOptions> Providers { get; set; } = new Dictionary<string, VirtualKeyProviderOptions>(StringComparer.OrdinalIgnoreCase);
}

/// <summary>A virtual key's budget and rate limits for one provider.</summary>
public sealed class VirtualKeyProviderOptions
{
    /// <summary>The budget of the key's calls to this provider.</summary>
    public GovernanceBudgetOptions? Budget { get; set; }

    /// <summary>Requests and tokens per period of the key's calls to this provider (<see cref="GovernanceRateLimitOptions.Concurrent"/> is not used here).</summary>
    public GovernanceRateLimitOptions? RateLimits { get; set; }
}

/// <summary>A team or a customer.</summary>
public sealed class GovernanceGroupOptions
{
    /// <summary>The id keys refer to.</summary>
    public string? Id { get; set; }

    /// <summary>A display name.</summary>
    public string? Name { get; set; }

    /// <summary>The budget, shared by every key of the team or customer.</summary>
    public GovernanceBudgetOptions? Budget { get; set; }
}

/// <summary>A budget in USD per period: a call is refused (402 <c>budget_exceeded</c>) once the period's spend reaches <see cref="MaxUsd"/>.</summary>
public sealed class GovernanceBudgetOptions
{
    /// <summary>The most that may be spent per period, in USD (positive).</summary>
    public decimal? MaxUsd { get; set; }

    /// <summary>
    /// The reset period: <c>N</c> of <c>m</c> (minutes), <c>h</c>, <c>d</c>, <c>w</c>, <c>M</c> (calendar months), <c>Y</c>
    /// (calendar years), e.g. <c>1d</c>, <c>6h</c>, <c>1M</c>; none: lifetime (never resets).
    /// </summary>
    public string? Reset { get; set; }

    /// <summary>
    /// Whether the windows start at UTC calendar boundaries (weeks on Monday 00:00). Default false: fixed windows counted
    /// from the Unix epoch (minutes, hours and days then also start on the minute, hour and midnight; weeks on Thursday);
    /// months and years are calendar months and years either way.
    /// </summary>
    public bool CalendarAligned { get; set; }
}

/// <summary>Rate limits: requests and tokens per fixed window (counted from the Unix epoch, so instances agree), and requests in flight.</summary>
public sealed class GovernanceRateLimitOptions
{
    /// <summary>Requests per period (positive).</summary>
    public long? Requests { get; set; }

    /// <summary>Tokens per period (positive): a call is refused once the tokens the provider reported in the window reach it.</summary>
    public long? Tokens { get; set; }

    /// <summary>The window of <see cref="Requests"/> and <see cref="Tokens"/>: <c>30s</c>, <c>1m</c>, <c>1h</c>, <c>1d</c>, <c>1w</c>, or a TimeSpan (<c>00:01:00</c>). Required with them.</summary>
    public string? Period { get; set; }

    /// <summary>Requests in flight at the same time (positive); a stream counts until it ends.</summary>
    public int? Concurrent { get; set; }
}
