using System.Text.Encodings.Web;

namespace Bifrost.Middleware.Providers.Cohere;

// Cohere's v2 API wire format (https://docs.cohere.com/reference/chat, /reference/chat-stream, /reference/embed,
// /reference/rerank, /reference/list-models), as flat classes with every field optional: content that may be a string
// or a list of blocks is written as a JsonElement, and stream payloads whose shape varies by event are read as
// JsonElement where needed, so no custom converter is required.

/// <summary>The body of <c>POST /v2/chat</c>.</summary>
internal sealed class CohereChatRequest
{
    public string? Model { get; set; }

    public IList<CohereMessage> Messages { get; set; } = [];

    public IList<CohereTool>? Tools { get; set; }

    /// <summary><c>REQUIRED</c> or <c>NONE</c>; omitted for the default (the model decides).</summary>
    public string? ToolChoice { get; set; }

    public double? Temperature { get; set; }

    /// <summary>top_p.</summary>
    public double? P { get; set; }

    /// <summary>top_k.</summary>
    public int? K { get; set; }

    public int? MaxTokens { get; set; }

    public IList<string>? StopSequences { get; set; }

    public long? Seed { get; set; }

    public double? FrequencyPenalty { get; set; }

    public double? PresencePenalty { get; set; }

    public CohereResponseFormat? ResponseFormat { get; set; }

    /// <summary><c>{"type":"enabled","token_budget":N}</c> / <c>{"type":"disabled"}</c>, or the caller's own object.</summary>
    public JsonElement? Thinking { get; set; }

    public bool? Stream { get; set; }

    /// <summary>Cohere-only fields the caller sent (<c>safety_mode</c>, <c>documents</c>, <c>citation_options</c>, ...).</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

/// <summary>A message: <c>system</c>, <c>user</c>, <c>assistant</c> or <c>tool</c>.</summary>
internal sealed class CohereMessage
{
    public string Role { get; set; } = "user";

    /// <summary>A string, or a list of content blocks.</summary>
    public JsonElement? Content { get; set; }

    /// <summary>assistant: the calls made.</summary>
    public IList<CohereToolCall>? ToolCalls { get; set; }

    /// <summary>assistant: the plan the model wrote before calling tools.</summary>
    public string? ToolPlan { get; set; }

    /// <summary>tool: the call answered.</summary>
    public string? ToolCallId { get; set; }
}

/// <summary>A content block: <c>text</c>, <c>image_url</c>, <c>thinking</c>, <c>document</c>.</summary>
internal sealed class CohereContentBlock
{
    public string? Type { get; set; }

    public string? Text { get; set; }

    public string? Thinking { get; set; }

    public CohereImageUrl? ImageUrl { get; set; }
}

internal sealed class CohereImageUrl
{
    public string? Url { get; set; }

    public string? Detail { get; set; }
}

internal sealed class CohereTool
{
    public string Type { get; set; } = "function";

    public CohereFunction? Function { get; set; }
}

internal sealed class CohereFunction
{
    public string? Name { get; set; }

    public string? Description { get; set; }

    public JsonElement? Parameters { get; set; }
}

internal sealed class CohereToolCall
{
    public string? Id { get; set; }

    public string? Type { get; set; }

    public CohereFunctionCall? Function { get; set; }
}

internal sealed class CohereFunctionCall
{
    public string? Name { get; set; }

    public string? Arguments { get; set; }
}

/// <summary><c>{"type":"text"}</c> or <c>{"type":"json_object","json_schema":{...}}</c>.</summary>
internal sealed class CohereResponseFormat
{
    public string? Type { get; set; }

    public JsonElement? JsonSchema { get; set; }
}

/// <summary>The answer of <c>POST /v2/chat</c>.</summary>
internal sealed class CohereChatResponse
{
    public string? Id { get; set; }

    public string? FinishReason { get; set; }

    public CohereResponseMessage? Message { get; set; }

    public CohereUsage? Usage { get; set; }
}

internal sealed class CohereResponseMessage
{
    public string? Role { get; set; }

    public IList<CohereContentBlock>? Content { get; set; }

    public string? ToolPlan { get; set; }

    public IList<CohereToolCall>? ToolCalls { get; set; }

    public JsonElement? Citations { get; set; }
}

/// <summary><c>{"billed_units":{...},"tokens":{...},"cached_tokens":n}</c>.</summary>
internal sealed class CohereUsage
{
    public CohereUnits? BilledUnits { get; set; }

    public CohereUnits? Tokens { get; set; }

    public double? CachedTokens { get; set; }
}

/// <summary>Counts (numbers that the API defines as floats).</summary>
internal sealed class CohereUnits
{
    public double? InputTokens { get; set; }

    public double? OutputTokens { get; set; }

    public double? SearchUnits { get; set; }

    public double? Images { get; set; }
}

/// <summary>
/// A stream event (<c>message-start</c>, <c>content-start</c>, <c>content-delta</c>, <c>content-end</c>,
/// <c>tool-plan-delta</c>, <c>tool-call-start</c>, <c>tool-call-delta</c>, <c>tool-call-end</c>, <c>citation-start</c>,
/// <c>citation-end</c>, <c>message-end</c>, <c>debug</c>).
/// </summary>
internal sealed class CohereStreamEvent
{
    public string? Type { get; set; }

    public string? Id { get; set; }

    public int? Index { get; set; }

    public CohereStreamDelta? Delta { get; set; }
}

internal sealed class CohereStreamDelta
{
    public CohereStreamMessage? Message { get; set; }

    public string? FinishReason { get; set; }

    public CohereUsage? Usage { get; set; }

    /// <summary>message-end: the error that ended the generation.</summary>
    public string? Error { get; set; }
}

/// <summary>The <c>delta.message</c> of an event: <c>content</c> and <c>tool_calls</c> are one object here (an empty list in message-start).</summary>
internal sealed class CohereStreamMessage
{
    public string? Role { get; set; }

    public JsonElement? Content { get; set; }

    public string? ToolPlan { get; set; }

    public JsonElement? ToolCalls { get; set; }
}

/// <summary>Cohere's error body: <c>{"message":"..."}</c> (some answers add <c>id</c>, <c>type</c> or <c>code</c>).</summary>
internal sealed class CohereError
{
    public string? Message { get; set; }
}

/// <summary>The body of <c>POST /v2/embed</c>.</summary>
internal sealed class CohereEmbedRequest
{
    public string? Model { get; set; }

    public IList<string>? Texts { get; set; }

    public string? InputType { get; set; }

    public IList<string> EmbeddingTypes { get; set; } = ["float"];

    public int? OutputDimension { get; set; }

    /// <summary>Cohere-only fields the caller sent (<c>truncate</c>, <c>max_tokens</c>).</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

internal sealed class CohereEmbedResponse
{
    public string? Id { get; set; }

    public CohereEmbeddings? Embeddings { get; set; }

    public CohereMeta? Meta { get; set; }
}

internal sealed class CohereEmbeddings
{
    public IList<float[]>? Float { get; set; }
}

internal sealed class CohereMeta
{
    public CohereUnits? BilledUnits { get; set; }

    public CohereUnits? Tokens { get; set; }
}

/// <summary>The body of <c>POST /v2/rerank</c>.</summary>
internal sealed class CohereRerankRequest
{
    public string? Model { get; set; }

    public string? Query { get; set; }

    public IList<string> Documents { get; set; } = [];

    public int? TopN { get; set; }
}

internal sealed class CohereRerankResponse
{
    public string? Id { get; set; }

    public IList<CohereRerankResult>? Results { get; set; }

    public CohereMeta? Meta { get; set; }
}

internal sealed class CohereRerankResult
{
    public int Index { get; set; }

    public double RelevanceScore { get; set; }
}

/// <summary>The answer of <c>GET /v1/models</c>.</summary>
internal sealed class CohereModelList
{
    public IList<CohereModel>? Models { get; set; }

    public string? NextPageToken { get; set; }
}

internal sealed class CohereModel
{
    public string? Name { get; set; }

    public IList<string>? Endpoints { get; set; }

    public bool? IsDeprecated { get; set; }

    public double? ContextLength { get; set; }
}

internal sealed class CoherePromptTokensDetails
{
    public int CachedTokens { get; set; }
}

/// <summary>The body of <c>POST /v1/tokenize</c> (https://docs.cohere.com/reference/tokenize): <c>text</c> of 1 to 65,536 characters.</summary>
internal sealed class CohereTokenizeRequest
{
    public string Text { get; set; } = string.Empty;

    public string Model { get; set; } = string.Empty;
}

/// <summary><c>{"tokens": [int], "token_strings": [string], "meta"}</c>.</summary>
internal sealed class CohereTokenizeResponse
{
    public IList<long>? Tokens { get; set; }
}

// gaps: Cohere embed jobs (native batches of /v1/embeddings lines), https://docs.cohere.com/reference/create-embed-job.

/// <summary>One row of an <c>embed-input</c> dataset: the text and the fields kept to map it back (its line and position).</summary>
internal sealed class CohereEmbedInputRow
{
    public string Text { get; set; } = string.Empty;

    public string CustomId { get; set; } = string.Empty;

    public string BifrostIndex { get; set; } = string.Empty;

    public string BifrostFormat { get; set; } = "float";
}

/// <summary><c>POST /v1/datasets</c>'s answer: <c>{"id"}</c>.</summary>
internal sealed class CohereDatasetCreated
{
    public string? Id { get; set; }
}

/// <summary><c>GET /v1/datasets/{id}</c>'s answer: <c>{"dataset": {...}}</c>.</summary>
internal sealed class CohereDatasetEnvelope
{
    public CohereDataset? Dataset { get; set; }
}

/// <summary>A dataset: its validation status and error, and its parts (Avro files to download).</summary>
internal sealed class CohereDataset
{
    public string? Id { get; set; }

    public string? ValidationStatus { get; set; }

    public string? ValidationError { get; set; }

    public IList<CohereDatasetPart>? DatasetParts { get; set; }
}

/// <summary>A part of a dataset: <c>{"id","name","url","index","num_rows"}</c>.</summary>
internal sealed class CohereDatasetPart
{
    public string? Name { get; set; }

    public string? Url { get; set; }

    public long? Index { get; set; }
}

/// <summary><c>POST /v1/embed-jobs</c>'s body.</summary>
internal sealed class CohereEmbedJobRequest
{
    public string Model { get; set; } = string.Empty;

    public string DatasetId { get; set; } = string.Empty;

    public string InputType { get; set; } = string.Empty;

    public IList<string> EmbeddingTypes { get; set; } = ["float"];

    public string? Name { get; set; }
}

/// <summary>An embed job (<c>GET /v1/embed-jobs/{id}</c>; <c>POST /v1/embed-jobs</c> answers <c>{"job_id"}</c>).</summary>
internal sealed class CohereEmbedJob
{
    public string? JobId { get; set; }

    public string? Name { get; set; }

    public string? Status { get; set; }

    public string? Model { get; set; }

    public string? InputDatasetId { get; set; }

    public string? OutputDatasetId { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(CohereChatRequest))]
[JsonSerializable(typeof(CohereChatResponse))]
[JsonSerializable(typeof(CohereStreamEvent))]
[JsonSerializable(typeof(CohereError))]
[JsonSerializable(typeof(CohereEmbedRequest))]
[JsonSerializable(typeof(CohereEmbedResponse))]
[JsonSerializable(typeof(CohereRerankRequest))]
[JsonSerializable(typeof(CohereRerankResponse))]
[JsonSerializable(typeof(CohereModelList))]
[JsonSerializable(typeof(CoherePromptTokensDetails))]
[JsonSerializable(typeof(CohereTokenizeRequest))]
[JsonSerializable(typeof(CohereTokenizeResponse))]
[JsonSerializable(typeof(IList<CohereContentBlock>))]
[JsonSerializable(typeof(CohereContentBlock))]
[JsonSerializable(typeof(CohereToolCall))]
[JsonSerializable(typeof(IList<string>))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
// gaps: embed jobs
[JsonSerializable(typeof(CohereEmbedInputRow))]
[JsonSerializable(typeof(CohereDatasetCreated))]
[JsonSerializable(typeof(CohereDatasetEnvelope))]
[JsonSerializable(typeof(CohereEmbedJobRequest))]
[JsonSerializable(typeof(CohereEmbedJob))]
internal sealed partial class CohereJsonContext : JsonSerializerContext
{
    /// <summary>The context the adapter uses: generated metadata with the relaxed encoder the gateway writes with.</summary>
    public static CohereJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
