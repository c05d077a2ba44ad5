namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// The async job envelope of <c>POST v1/async/...</c> (202 <c>{id, status, created_at}</c>) and <c>GET v1/async/.../{job_id}</c>.
/// Written by <see cref="AsyncEndpoints"/> without this type (the stored result is copied, never parsed); the type
/// describes the shape for OpenAPI documents.
/// </summary>
internal sealed class AsyncJobEnvelope
{
    /// <summary>The job id.</summary>
    [JsonPropertyName("id")]
    public string Id { get; set; } = string.Empty;

    /// <summary><c>pending</c>, <c>processing</c>, <c>completed</c> or <c>failed</c>.</summary>
    [JsonPropertyName("status")]
    public string Status { get; set; } = "pending";

    /// <summary>When the job was submitted (RFC 3339).</summary>
    [JsonPropertyName("created_at")]
    public string? CreatedAt { get; set; }

    /// <summary>When the job finished (RFC 3339).</summary>
    [JsonPropertyName("completed_at")]
    public string? CompletedAt { get; set; }

    /// <summary>When the stored result expires (RFC 3339).</summary>
    [JsonPropertyName("expires_at")]
    public string? ExpiresAt { get; set; }

    /// <summary>The status the synchronous call would have answered.</summary>
    [JsonPropertyName("status_code")]
    public int? StatusCode { get; set; }

    /// <summary>The operation's answer, once completed.</summary>
    [JsonPropertyName("result")]
    public JsonElement? Result { get; set; }

    /// <summary>The error, once failed.</summary>
    [JsonPropertyName("error")]
    public BifrostError? Error { get; set; }
}
