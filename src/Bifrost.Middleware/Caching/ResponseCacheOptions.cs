using System.ComponentModel.DataAnnotations;

namespace Bifrost.Middleware.Caching;

/// <summary>
/// The exact response cache (<c>Bifrost:Cache</c>): answers of identical requests replayed from the app's
/// <c>HybridCache</c> (in-memory, plus whatever <c>IDistributedCache</c> the host registered as its second level).
/// Off by default. As in Bifrost, only requests that carry a cache key (<c>x-bf-cache-key</c>, or
/// <see cref="DefaultCacheKey"/>) are cached.
/// </summary>
public sealed class ResponseCacheOptions
{
    /// <summary>Whether the cache layer is in the pipeline. Default false.</summary>
    public bool Enabled { get; set; }

    /// <summary>How long an answer is kept, unless a rule or the request's <c>x-bf-cache-ttl</c> says otherwise. Default 5 minutes (Bifrost's default).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan Ttl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The longest TTL a request may ask for with <c>x-bf-cache-ttl</c> (longer asks are cut to it). Default 1 day.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan MaxTtl { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// The cache key of requests that send no <c>x-bf-cache-key</c> (and of async jobs and batch lines, which carry no
    /// headers). Null (default): such requests are not cached, as Bifrost's <c>default_cache_key</c> left empty.
    /// </summary>
    [MaxLength(256)]
    public string? DefaultCacheKey { get; set; }

    /// <summary>Whether answers to requests with an explicit <c>temperature</c> above 0 are cached. Default false (sampled answers are not replayed unless allowed).</summary>
    public bool CacheNonZeroTemperature { get; set; }

    /// <summary>
    /// Whether callers share entries. Default false: the tenant (the virtual key, else the job owner the host's
    /// <see cref="IJobOwnerResolver"/> gives the request) is part of every key, so one tenant never gets another's answer.
    /// </summary>
    public bool ShareAcrossTenants { get; set; }

    /// <summary>The largest entry stored, in bytes (the answer's JSON, or a stream's chunks). Larger answers are served but not cached. Default 1 MiB (HybridCache's own default payload limit).</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxEntryBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Per provider/model rules, the first whose <see cref="ResponseCacheRule.Match"/> matches the resolved
    /// <c>provider/model</c> applies; without a match every model is cached with the defaults above.
    /// </summary>
    [Microsoft.Extensions.Options.ValidateEnumeratedItems]
    public IList<ResponseCacheRule> Rules { get; set; } = [];

    /// <summary>The semantic cache, looked up after an exact miss (<c>Bifrost:Cache:Semantic</c>). Off by default.</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public SemanticCacheOptions Semantic { get; set; } = new();
}

/// <summary>A per provider/model rule of the response cache.</summary>
public sealed class ResponseCacheRule
{
    /// <summary><c>provider/model</c>, <c>provider/*</c> (every model of a provider), or <c>*</c>.</summary>
    [Required]
    public string? Match { get; set; }

    /// <summary>Whether matching requests are cached. Default true; false keeps the matching models out of the cache.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The TTL of matching answers (else <see cref="ResponseCacheOptions.Ttl"/>).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan? Ttl { get; set; }

    /// <summary>Overrides <see cref="ResponseCacheOptions.CacheNonZeroTemperature"/> for matching models.</summary>
    public bool? CacheNonZeroTemperature { get; set; }

    /// <summary>Whether matching models get semantic lookups (else <see cref="SemanticCacheOptions.Enabled"/>).</summary>
    public bool? Semantic { get; set; }

    /// <summary>The semantic threshold of matching models (else <see cref="SemanticCacheOptions.Threshold"/>).</summary>
    [Range(0.0, 1.0)]
    public double? SemanticThreshold { get; set; }

    internal bool Matches(string provider, string model)
    {
        var match = Match ?? string.Empty;
        if (match == "*")
        {
            return true;
        }

        var slash = match.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !match.AsSpan(0, slash).Equals(provider, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var modelPart = match.AsSpan(slash + 1);
        return modelPart is "*" || modelPart.Equals(model, StringComparison.OrdinalIgnoreCase);
    }
}
