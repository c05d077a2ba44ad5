namespace Bifrost.Middleware;

/// <summary>Bifrost's <c>extra_fields</c>: gateway metadata added to every response, stream chunk and error.</summary>
public sealed class BifrostExtraFields
{
    // Empty strings are stored as null, so they are omitted on the wire like every absent field.
    private string? _requestType;
    private string? _provider;
    private string? _modelRequested;
    private string? _modelDeployment;
    private string? _countMethod;

    /// <summary>The kind of request: <c>chat_completion</c>, <c>chat_completion_stream</c>, <c>list_models</c>, ...</summary>
    public string? RequestType { get => _requestType; set => _requestType = NullIfEmpty(value); }

    /// <summary>The provider that served (or failed) the request.</summary>
    public string? Provider { get => _provider; set => _provider = NullIfEmpty(value); }

    /// <summary>The model the caller asked for, without the provider prefix.</summary>
    public string? ModelRequested { get => _modelRequested; set => _modelRequested = NullIfEmpty(value); }

    /// <summary>The provider's own model id, when it differs from <see cref="ModelRequested"/>.</summary>
    public string? ModelDeployment { get => _modelDeployment; set => _modelDeployment = NullIfEmpty(value); }

    /// <summary>Gateway-measured latency in milliseconds (on stream chunks: since the request started).</summary>
    public long? Latency { get; set; }

    /// <summary>Index of a stream chunk, from 0.</summary>
    public int? ChunkIndex { get; set; }

    /// <summary>For token counts: <c>native</c> (the provider counted) or <c>estimated</c> (counted locally).</summary>
    public string? CountMethod { get => _countMethod; set => _countMethod = NullIfEmpty(value); }

    /// <summary>
    /// The request's cost in USD, from the model's price (the embedded catalog or <c>Bifrost:Pricing</c>) and the usage the
    /// provider reported: on every answer, on the stream chunk that carries the usage, on batch lines at the batch price.
    /// Absent when the model's price or the usage is unknown (never a made-up figure).
    /// </summary>
    public double? Cost { get; set; }

    /// <summary>The raw provider request, only when asked for.</summary>
    public JsonElement? RawRequest { get; set; }

    /// <summary>The raw provider response, only when asked for.</summary>
    public JsonElement? RawResponse { get; set; }

    // Response cache (Caching/): Bifrost's cache_debug.

    /// <summary>What the response cache did (Bifrost's <c>cache_debug</c>): present when the call was looked up in the cache.</summary>
    public BifrostCacheDebug? CacheDebug { get; set; }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}

/// <summary>Bifrost's <c>extra_fields.cache_debug</c>: the response cache's lookup of this call.</summary>
public sealed class BifrostCacheDebug
{
    /// <summary>Whether the answer came from the cache.</summary>
    public bool CacheHit { get; set; }

    /// <summary>The entry's id (the first 32 hex digits of its key's SHA-256).</summary>
    public string? CacheId { get; set; }

    /// <summary>On a hit, how it matched: <c>direct</c> (the exact cache) or <c>semantic</c> (the semantic cache).</summary>
    public string? HitType { get; set; }

    /// <summary>Semantic cache: the provider of the embedding model (on semantic lookups, hit or miss).</summary>
    public string? ProviderUsed { get; set; }

    /// <summary>Semantic cache: the embedding model (on semantic lookups, hit or miss).</summary>
    public string? ModelUsed { get; set; }

    /// <summary>Semantic cache: the embedding call's input tokens, when the embedding model reported them.</summary>
    public int? InputTokens { get; set; }

    /// <summary>Semantic cache: the threshold the hit passed.</summary>
    public double? Threshold { get; set; }

    /// <summary>Semantic cache: the cosine similarity of the hit's stored text and this request's.</summary>
    public double? Similarity { get; set; }
}
