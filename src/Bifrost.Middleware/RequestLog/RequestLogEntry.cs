namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// One gateway call in the request log: who called, what, which provider and model served it, how it ended, how long it
/// took, what it used and cost. Written off the request's path by the gateway (one entry per call through HTTP or
/// <see cref="IBifrostClient"/>: sync, stream, async job, batch line). Never holds a key or its secret; the request and
/// response content only when <see cref="RequestLogOptions.CaptureContent"/> is on (after the <see cref="IRequestLogRedactor"/>).
/// </summary>
public sealed record RequestLogEntry
{
    /// <summary>Sources of a call (<see cref="Source"/>).</summary>
    public const string SourceSync = "sync";

    /// <summary>A streamed call.</summary>
    public const string SourceStream = "stream";

    /// <summary>An async job's run.</summary>
    public const string SourceAsync = "async";

    /// <summary>A batch line.</summary>
    public const string SourceBatch = "batch";

    /// <summary>The entry's id, unique in its store.</summary>
    public required string Id { get; init; }

    /// <summary>When the call started (UTC, from the gateway's <see cref="TimeProvider"/>).</summary>
    public required DateTimeOffset Time { get; init; }

    /// <summary>
    /// The caller: the owner of what it creates (<c>vk:&lt;id&gt;</c> for a virtual key, else the host's
    /// <see cref="IJobOwnerResolver"/>: a user id or a hash of the credential, never the credential); for jobs and batch
    /// lines the job's owner; null for in-process calls without a virtual key.
    /// </summary>
    public string? Owner { get; init; }

    /// <summary>The virtual key's id, when the call came with one (governance on).</summary>
    public string? VirtualKeyId { get; init; }

    /// <summary>The operation (request type): <c>chat_completion</c>, <c>chat_completion_stream</c>, <c>embedding</c>, ...</summary>
    public required string Operation { get; init; }

    /// <summary>How the call came: <c>sync</c>, <c>stream</c>, <c>async</c> or <c>batch</c>.</summary>
    public required string Source { get; init; }

    /// <summary>The provider that served (or failed) the call; null when it failed before one was chosen.</summary>
    public string? Provider { get; init; }

    /// <summary>The model asked for (without the provider prefix); null when unknown.</summary>
    public string? Model { get; init; }

    /// <summary>The HTTP status of the outcome: 200, the error's status, or 499 when the caller gave up (a cut stream).</summary>
    public int Status { get; init; }

    /// <summary>The error's code (<c>rate_limit_exceeded</c>, <c>budget_exceeded</c>, ...); null on success.</summary>
    public string? ErrorCode { get; init; }

    /// <summary>How long the call took, in milliseconds (a stream: until its end).</summary>
    public long LatencyMs { get; init; }

    /// <summary>Streams: milliseconds until the first chunk; null for whole answers and streams that failed before it.</summary>
    public long? TimeToFirstChunkMs { get; init; }

    /// <summary>Input tokens the provider reported; null when it reported none.</summary>
    public long? InputTokens { get; init; }

    /// <summary>Output tokens the provider reported; null when it reported none.</summary>
    public long? OutputTokens { get; init; }

    /// <summary>The call's cost in USD (<c>extra_fields.cost</c>); null when the price or the usage is unknown.</summary>
    public decimal? CostUsd { get; init; }

    /// <summary>The async job's id (<see cref="Source"/> <c>async</c>).</summary>
    public string? JobId { get; init; }

    /// <summary>The batch's id (<see cref="Source"/> <c>batch</c>).</summary>
    public string? BatchId { get; init; }

    /// <summary>The batch line's <c>custom_id</c>.</summary>
    public string? CustomId { get; init; }

    /// <summary>The HTTP request's id (the <c>x-request-id</c> answer header) for calls over HTTP.</summary>
    public string? RequestId { get; init; }

    /// <summary>The answer's id (<c>chatcmpl-...</c>), when the provider gave one.</summary>
    public string? ResponseId { get; init; }

    /// <summary>The request's JSON, only with <see cref="RequestLogOptions.CaptureContent"/>.</summary>
    public string? RequestContent { get; init; }

    /// <summary>
    /// The answer's JSON, only with <see cref="RequestLogOptions.CaptureContent"/>: a whole answer as it went out; a stream
    /// as the answer it assembles to (chat: a <c>chat.completion</c>; Responses: the final <c>response</c>; other
    /// operations: a JSON array of its chunks), with a <c>bifrost_capture</c> marker (<c>complete</c>: false when it
    /// failed or the caller left it, <c>truncated</c>: true when cut at <see cref="RequestLogOptions.MaxStreamContentLength"/>).
    /// A native batch line: its <c>response.body</c> as the provider returned it (priced).
    /// </summary>
    public string? ResponseContent { get; init; }
}
