namespace Bifrost.Middleware;

/// <summary>The Bifrost error shape, sent with every non-2xx answer.</summary>
public sealed class BifrostError
{
    /// <summary>An optional event id.</summary>
    public string? EventId { get; set; }

    /// <summary>An optional error category.</summary>
    public string? Type { get; set; }

    /// <summary>True when the gateway rejected the request itself; false when the provider failed.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public bool IsBifrostError { get; set; }

    /// <summary>The HTTP status code.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public int StatusCode { get; set; }

    /// <summary>The error itself, in the shape OpenAI SDKs read.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public BifrostErrorDetail Error { get; set; } = new();

    /// <summary>Provider, requested model and request type, when known.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }
}

/// <summary>The <c>error</c> object of <see cref="BifrostError"/>.</summary>
public sealed class BifrostErrorDetail
{
    /// <summary>e.g. <c>invalid_request_error</c>, <c>authentication_error</c>, <c>rate_limit_error</c>, <c>api_error</c>.</summary>
    public string? Type { get; set; }

    /// <summary>A machine-readable code, e.g. <c>model_not_found</c>.</summary>
    public string? Code { get; set; }

    /// <summary>A human-readable message.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string Message { get; set; } = string.Empty;

    /// <summary>The request parameter at fault, if any.</summary>
    public string? Param { get; set; }

    /// <summary>An optional event id.</summary>
    public string? EventId { get; set; }

    /// <summary>
    /// The provider's own error details, when kept: e.g. Azure OpenAI's <c>innererror</c> of a <c>content_filter</c> error
    /// (<c>code</c>, <c>content_filter_result</c> with each category's <c>filtered</c>/<c>severity</c>/<c>detected</c>).
    /// </summary>
    [JsonPropertyName("innererror")]
    public JsonElement? InnerError { get; set; }
}
