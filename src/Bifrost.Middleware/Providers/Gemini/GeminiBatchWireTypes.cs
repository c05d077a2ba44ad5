namespace Bifrost.Middleware.Providers.Gemini;

// The Gemini Batch API and Files API wire format (https://ai.google.dev/api/batch-mode, https://ai.google.dev/api/files,
// https://ai.google.dev/gemini-api/docs/batch-api; notes with sources in research16/gemini-batch.md).

/// <summary>One line of a batch input file: <c>{"key", "request": GenerateContentRequest}</c>.</summary>
internal sealed class GeminiBatchInputLine
{
    public string? Key { get; set; }

    public GeminiRequest? Request { get; set; }
}

/// <summary>One line of a batch's responses file: <c>{"key", "response"?: GenerateContentResponse, "error"?: google.rpc.Status}</c>.</summary>
internal sealed class GeminiBatchResultLine
{
    public string? Key { get; set; }

    public GeminiResponse? Response { get; set; }

    /// <summary>A <c>google.rpc.Status</c>: <c>code</c> is the gRPC code, not an HTTP status.</summary>
    public GeminiErrorDetail? Error { get; set; }
}

/// <summary>The body of the resumable upload's start request: <c>{"file": {"display_name"}}</c>.</summary>
internal sealed class GeminiUploadStart
{
    public GeminiUploadFile File { get; set; } = new();
}

internal sealed class GeminiUploadFile
{
    [JsonPropertyName("display_name")]
    public string? DisplayName { get; set; }
}

/// <summary>The upload's answer: <c>{"file": {"name": "files/…", …}}</c>.</summary>
internal sealed class GeminiFileEnvelope
{
    public GeminiFileInfo? File { get; set; }
}

internal sealed class GeminiFileInfo
{
    public string? Name { get; set; }

    public string? MimeType { get; set; }

    public string? State { get; set; }
}

/// <summary>The body of <c>models/{model}:batchGenerateContent</c>: <c>{"batch": {"displayName", "inputConfig": {"fileName"}}}</c>.</summary>
internal sealed class GeminiBatchCreateRequest
{
    public GeminiBatchSpec Batch { get; set; } = new();
}

internal sealed class GeminiBatchSpec
{
    public string? DisplayName { get; set; }

    public GeminiBatchInputConfig? InputConfig { get; set; }
}

internal sealed class GeminiBatchInputConfig
{
    public string? FileName { get; set; }
}

/// <summary>A batch as a long-running operation: <c>{"name": "batches/…", "metadata": GenerateContentBatch, "done", "error", "response"}</c>.</summary>
internal sealed class GeminiBatchOperation
{
    public string? Name { get; set; }

    public GeminiBatchMetadata? Metadata { get; set; }

    public bool? Done { get; set; }

    public GeminiErrorDetail? Error { get; set; }

    /// <summary>The finished operation's result (a <c>GenerateContentBatchOutput</c>).</summary>
    public GeminiBatchOutput? Response { get; set; }
}

/// <summary>The <c>GenerateContentBatch</c> resource.</summary>
internal sealed class GeminiBatchMetadata
{
    public string? Name { get; set; }

    public string? Model { get; set; }

    public string? DisplayName { get; set; }

    /// <summary>RFC 3339 with up to 9 fractional digits (kept as text: parsed by <see cref="GeminiAdapter"/>).</summary>
    public string? CreateTime { get; set; }

    public string? EndTime { get; set; }

    public GeminiBatchStats? BatchStats { get; set; }

    /// <summary><c>BATCH_STATE_PENDING</c>, <c>_RUNNING</c>, <c>_SUCCEEDED</c>, <c>_FAILED</c>, <c>_CANCELLED</c>, <c>_EXPIRED</c>.</summary>
    public string? State { get; set; }

    public GeminiBatchOutput? Output { get; set; }
}

/// <summary>Counts (int64: strings in protobuf JSON, numbers accepted too).</summary>
internal sealed class GeminiBatchStats
{
    [JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)]
    public long? RequestCount { get; set; }

    [JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)]
    public long? SuccessfulRequestCount { get; set; }

    [JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)]
    public long? FailedRequestCount { get; set; }

    [JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)]
    public long? PendingRequestCount { get; set; }
}

/// <summary>A batch's output: the responses file (file input) — inlined responses are not used by the gateway.</summary>
internal sealed class GeminiBatchOutput
{
    public string? ResponsesFile { get; set; }
}
